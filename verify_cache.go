package flip

import (
	"container/list"
	"sync"
	"time"
)

// grantCache remembers recent successful verifications, keyed by the key's
// hash. It is bounded (oldest entry evicted first) and generation-counted:
// an invalidation bumps the generation, and a lookup that started before
// it may not store its result, so a grant read from the database before a
// change can never outlive that change in the cache.
type grantCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	gen     uint64
	paused  bool                     // nothing is served or stored (a ChangeFeed is not listening)
	entries map[string]*list.Element // hash → element of order
	order   *list.List               // *grant, oldest first
}

type grant struct {
	hash    string
	trust   Trust
	expires time.Time
}

func newGrantCache(ttl time.Duration, maxEntries int) *grantCache {
	return &grantCache{ttl: ttl, max: maxEntries, entries: map[string]*list.Element{}, order: list.New()}
}

// get returns the cached trust for hash if its grant has not expired, and
// the generation a lookup started now must present to put.
func (c *grantCache) get(hash string, now time.Time) (Trust, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		return Trust{}, false, c.gen
	}
	if el, ok := c.entries[hash]; ok {
		g := el.Value.(*grant)
		if now.Before(g.expires) {
			return g.trust, true, c.gen
		}
		c.remove(el)
	}
	return Trust{}, false, c.gen
}

// put stores a grant dated at since, unless the cache was invalidated after
// the caller's get (gen differs).
func (c *grantCache) put(hash string, t Trust, since time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.paused {
		return
	}
	if el, ok := c.entries[hash]; ok {
		c.remove(el)
	}
	for c.order.Len() >= c.max {
		c.remove(c.order.Front())
	}
	c.entries[hash] = c.order.PushBack(&grant{hash: hash, trust: t, expires: since.Add(c.ttl)})
}

// invalidate drops every grant whose trust matches and bumps the
// generation, so lookups in flight do not store what they read.
func (c *grantCache) invalidate(match func(Trust) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for el := c.order.Front(); el != nil; {
		next := el.Next()
		if match(el.Value.(*grant).trust) {
			c.remove(el)
		}
		el = next
	}
}

// pause empties the cache and stops it serving and storing grants until
// resume; resume empties it again, as grants read while paused may predate
// changes nobody was told of.
func (c *grantCache) pause(paused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = paused
	c.gen++
	clear(c.entries)
	c.order.Init()
}

// len returns the number of entries, expired ones included.
func (c *grantCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

func (c *grantCache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*grant).hash)
	c.order.Remove(el)
}
