package cognitolocal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault is what the Proxy does instead of forwarding a lookup.
type Fault string

// The faults a Proxy can inject. A fault named "<status> <code>" answers
// with that HTTP status and Cognito error code, shaped like Cognito's
// errors (AWS JSON 1.1: an x-amzn-ErrorType header and a __type field), so
// the SDK decodes them as it would the real service's.
const (
	Forward                 Fault = "" // no fault
	Fault500                Fault = "500 InternalErrorException"
	Fault503                Fault = "503 ServiceUnavailableException"
	Fault429                Fault = "429 TooManyRequestsException"
	FaultThrottle400        Fault = "400 TooManyRequestsException" // how Cognito itself reports throttling
	Fault400                Fault = "400 InvalidParameterException"
	Fault403                Fault = "403 NotAuthorizedException"
	FaultUnrecognizedClient Fault = "400 UnrecognizedClientException" // how AWS refuses an unknown access key (the emulator accepts any)

	// Fault502HTML answers 502 with an HTML page, as a load balancer does:
	// the SDK finds no error code in it. FaultSlow holds the request until
	// the client gives up (or the proxy closes), then forwards it.
	// FaultDrop closes the connection without answering.
	Fault502HTML Fault = "502 html"
	FaultSlow    Fault = "slow"
	FaultDrop    Fault = "drop"
)

// Proxy is an HTTP reverse proxy in front of the emulator that injects a
// Fault into the ListUsers lookups of chosen emails, counts the lookups it
// sees per email, and can add latency to every request. Other requests
// pass through untouched.
type Proxy struct {
	URL string // for a client's BaseEndpoint

	srv     *httptest.Server
	rp      *httputil.ReverseProxy
	closing chan struct{}

	mu       sync.Mutex
	faults   map[string]Fault
	all      Fault
	latency  time.Duration
	requests map[string]int // ListUsers lookups by email
	total    int
}

// NewProxy starts a Proxy in front of target (the emulator's URL); it is
// closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := StartProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// StartProxy starts a Proxy outside a test (the bench command), as
// NewProxy does for a test. Close it when done.
func StartProxy(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err == nil && (u.Scheme == "" || u.Host == "") {
		err = errors.New("want an absolute URL")
	}
	if err != nil {
		return nil, fmt.Errorf("cognitolocal: proxy target %q: %w", target, err)
	}
	p := &Proxy{
		closing:  make(chan struct{}),
		faults:   map[string]Fault{},
		requests: map[string]int{},
		rp:       &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	return p, nil
}

// Close stops a Proxy made by StartProxy: requests it is holding (latency,
// FaultSlow) are released and the listener is closed. Do not call it on a
// Proxy from NewProxy, which closes itself when its test ends.
func (p *Proxy) Close() {
	close(p.closing)
	p.srv.Close()
}

func (p *Proxy) locked(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

// Fail makes every lookup of email answer with f (Forward clears it).
func (p *Proxy) Fail(email string, f Fault) { p.locked(func() { p.faults[email] = f }) }

// FailAll makes every lookup of an email without its own fault answer
// with f.
func (p *Proxy) FailAll(f Fault) { p.locked(func() { p.all = f }) }

// SetLatency delays every request by d before handling it.
func (p *Proxy) SetLatency(d time.Duration) { p.locked(func() { p.latency = d }) }

// Lookups returns how many ListUsers requests filtering on email the proxy
// received, retries included.
func (p *Proxy) Lookups(email string) (n int) {
	p.locked(func() { n = p.requests[email] })
	return n
}

// TotalLookups returns how many ListUsers requests with an email filter
// the proxy received.
func (p *Proxy) TotalLookups() (n int) {
	p.locked(func() { n = p.total })
	return n
}

var emailFilter = regexp.MustCompile(`^\s*email\s*=\s*"(.*)"\s*$`)

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	var in struct{ Filter string }
	_ = json.Unmarshal(body, &in)
	fault, latency := Forward, time.Duration(0)
	p.locked(func() {
		latency = p.latency
		if m := emailFilter.FindStringSubmatch(in.Filter); m != nil {
			p.requests[m[1]]++
			p.total++
			fault = p.all
			if f, ok := p.faults[m[1]]; ok {
				fault = f
			}
		}
	})

	if latency > 0 && !p.wait(r, latency) {
		return
	}
	switch fault {
	case Forward, FaultSlow:
		if fault == Forward || p.wait(r, time.Hour) {
			p.rp.ServeHTTP(w, r)
		}
	case FaultDrop:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	case Fault502HTML:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	default:
		writeAPIError(w, fault)
	}
}

// writeAPIError answers as Cognito does with the status and code of fault.
func writeAPIError(w http.ResponseWriter, fault Fault) {
	s, code, _ := strings.Cut(string(fault), " ")
	status, _ := strconv.Atoi(s)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code)
	w.Header().Set("X-Amzn-Requestid", "flip-fault-proxy")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": "injected by the flip test proxy: " + string(fault)})
}

// wait sleeps for d unless the client goes away or the proxy closes first;
// it reports whether the full time passed.
func (p *Proxy) wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-p.closing:
	}
	return false
}
