package cognitolocal

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"regexp"
	"sync"
	"testing"
	"time"
)

// Fault is what the Proxy does instead of forwarding a lookup.
type Fault string

// The faults a Proxy can inject. Error answers are shaped like Cognito's
// (AWS JSON 1.1: an x-amzn-ErrorType header and a __type field), so the
// SDK decodes them as it would the real service's.
const (
	// Forward: no fault.
	Forward Fault = ""
	// Fault500 answers 500 InternalErrorException.
	Fault500 Fault = "500 InternalErrorException"
	// Fault503 answers 503 ServiceUnavailableException.
	Fault503 Fault = "503 ServiceUnavailableException"
	// Fault429 answers 429 TooManyRequestsException.
	Fault429 Fault = "429 TooManyRequestsException"
	// FaultThrottle400 answers 400 TooManyRequestsException, which is how
	// Cognito itself reports throttling.
	FaultThrottle400 Fault = "400 TooManyRequestsException"
	// Fault502HTML answers 502 with an HTML page, as a load balancer does:
	// the SDK finds no error code in it.
	Fault502HTML Fault = "502 html"
	// Fault400 answers 400 InvalidParameterException.
	Fault400 Fault = "400 InvalidParameterException"
	// Fault403 answers 403 NotAuthorizedException.
	Fault403 Fault = "403 NotAuthorizedException"
	// FaultUnrecognizedClient answers 400 UnrecognizedClientException,
	// how AWS refuses an access key it does not know (the emulator
	// accepts any).
	FaultUnrecognizedClient Fault = "400 UnrecognizedClientException"
	// FaultSlow holds the request until the client gives up (or the
	// proxy closes), then forwards it.
	FaultSlow Fault = "slow"
	// FaultDrop closes the connection without answering.
	FaultDrop Fault = "drop"
)

// Proxy is an HTTP reverse proxy in front of the emulator that injects a
// Fault into the ListUsers lookups of chosen emails, counts the lookups it
// sees per email, and can add latency to every request. Other requests
// pass through untouched.
type Proxy struct {
	// URL is the proxy's base URL, for a client's BaseEndpoint.
	URL string

	srv     *httptest.Server
	rp      *httputil.ReverseProxy
	closing chan struct{}

	mu       sync.Mutex
	faults   map[string]Fault
	all      Fault
	latency  time.Duration
	requests map[string]int
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

// Fail makes every lookup of email answer with f (Forward clears it).
func (p *Proxy) Fail(email string, f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[email] = f
}

// FailAll makes every lookup of an email without its own fault answer
// with f.
func (p *Proxy) FailAll(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = f
}

// SetLatency delays every request by d before handling it.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// Lookups returns how many ListUsers requests filtering on email the proxy
// received, retries included.
func (p *Proxy) Lookups(email string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[email]
}

// TotalLookups returns how many ListUsers requests with an email filter
// the proxy received.
func (p *Proxy) TotalLookups() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.requests {
		n += c
	}
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
	email, fault, latency := "", Forward, time.Duration(0)
	p.mu.Lock()
	latency = p.latency
	if m := emailFilter.FindStringSubmatch(in.Filter); m != nil {
		email = m[1]
		p.requests[email]++
		fault = p.all
		if f, ok := p.faults[email]; ok {
			fault = f
		}
	}
	p.mu.Unlock()

	if latency > 0 && !p.wait(r, latency) {
		return
	}
	switch fault {
	case Forward:
		p.rp.ServeHTTP(w, r)
	case FaultSlow:
		if p.wait(r, time.Hour) {
			p.rp.ServeHTTP(w, r)
		}
	case FaultDrop:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
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

// apiErrors are the Cognito error answers the proxy can inject: HTTP status
// and error code.
var apiErrors = map[Fault]struct {
	status int
	code   string
}{
	Fault500:                {500, "InternalErrorException"},
	Fault503:                {503, "ServiceUnavailableException"},
	Fault429:                {429, "TooManyRequestsException"},
	FaultThrottle400:        {400, "TooManyRequestsException"},
	Fault400:                {400, "InvalidParameterException"},
	Fault403:                {403, "NotAuthorizedException"},
	FaultUnrecognizedClient: {400, "UnrecognizedClientException"},
}

// writeAPIError answers as Cognito does with the error of fault.
func writeAPIError(w http.ResponseWriter, fault Fault) {
	e := apiErrors[fault]
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", e.code)
	w.Header().Set("X-Amzn-Requestid", "flip-fault-proxy")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": "injected by the flip test proxy: " + string(fault)})
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
