package main

// Bound limits the admin writes running at once: registrations and trust
// changes, which NewHandler gives one Bound between them, as they share
// the admin pool. A request that finds it full is answered 503 at once
// rather than queueing for a connection. A nil *Bound bounds nothing.
type Bound struct {
	tokens chan struct{} // a token per write running
}

// NewBound returns a Bound of n writes at once; nil (no bound) for n <= 0.
func NewBound(n int) *Bound {
	if n <= 0 {
		return nil
	}
	return &Bound{tokens: make(chan struct{}, n)}
}

// TryEnter takes a token for one write, or reports false when the bound's
// worth are already running. Call Leave once the write is done.
func (b *Bound) TryEnter() bool {
	if b == nil {
		return true
	}
	select {
	case b.tokens <- struct{}{}:
		return true
	default:
		return false
	}
}

// Leave gives back the token TryEnter took.
func (b *Bound) Leave() {
	if b != nil {
		<-b.tokens
	}
}

// Cap is the number of writes the bound lets run at once; 0 for none.
func (b *Bound) Cap() int {
	if b == nil {
		return 0
	}
	return cap(b.tokens)
}
