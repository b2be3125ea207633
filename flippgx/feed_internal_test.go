package flippgx

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/londonaicentre/flip/fliptest"
)

// A connection that goes silent (its packets dropped, no FIN, no RST, as
// when a NAT or a failover forgets it) is noticed by the ping after a
// quiet pingInterval: the feed reports it lost and listens again on a new
// connection.
func TestFeed_NoticesASilentlyDeadConnection(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startBlackholeProxy(t, net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
	cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = "127.0.0.1", proxy.port, nil
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	f := NewFeed(pool, nil)
	f.pingInterval, f.pingTimeout = 50*time.Millisecond, 200*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	listenCtx, stop := context.WithCancel(ctx)
	live := make(chan bool, 8)
	done := make(chan error, 1)
	go func() { done <- f.Listen(listenCtx, func(b bool) { live <- b }, func(uuid.UUID) {}) }()
	want := func(b bool, what string) {
		t.Helper()
		select {
		case got := <-live:
			if got != b {
				t.Fatalf("listening(%v), want listening(%v): %s", got, b, what)
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
	want(true, "LISTEN")
	time.Sleep(3 * f.pingInterval) // pings on a live connection change nothing
	proxy.blackhole()
	want(false, "the silent connection noticed")
	want(true, "LISTEN on a new connection")
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Listen = %v, want context.Canceled", err)
	}
	want(false, "Listen returning")
}

// blackholeProxy forwards TCP connections to a server until blackhole is
// called, after which the connections open at that moment drop every byte
// in both directions while staying open; later connections are forwarded.
type blackholeProxy struct {
	port  uint16
	mu    sync.Mutex
	links []*atomic.Bool // per connection: dropping?
}

func startBlackholeProxy(t *testing.T, server string) *blackholeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackholeProxy{port: uint16(ln.Addr().(*net.TCPAddr).Port)}
	var conns sync.WaitGroup
	var open sync.Map // net.Conn → struct{}, closed at cleanup
	t.Cleanup(func() {
		_ = ln.Close()
		open.Range(func(c, _ any) bool { _ = c.(net.Conn).Close(); return true })
		conns.Wait()
	})
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			upstream, err := net.Dial("tcp", server)
			if err != nil {
				_ = client.Close()
				continue
			}
			open.Store(client, struct{}{})
			open.Store(upstream, struct{}{})
			dropping := new(atomic.Bool)
			p.mu.Lock()
			p.links = append(p.links, dropping)
			p.mu.Unlock()
			conns.Add(2)
			go func() { defer conns.Done(); pipe(upstream, client, dropping) }()
			go func() { defer conns.Done(); pipe(client, upstream, dropping) }()
		}
	}()
	return p
}

// pipe copies src to dst, dropping what it reads while dropping is set.
func pipe(dst, src net.Conn, dropping *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !dropping.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *blackholeProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.links {
		d.Store(true)
	}
}
