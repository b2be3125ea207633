package cognitolocal

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// StartProxy is NewProxy without a test: it forwards, adds its latency, and
// Close releases it.
func TestStartProxy_ForwardsAndCloses(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.URL.Path)
	}))
	defer target.Close()
	p, err := StartProxy(target.URL)
	if err != nil {
		t.Fatal(err)
	}
	p.SetLatency(20 * time.Millisecond)
	start := time.Now()
	resp, err := http.Get(p.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello /health" || time.Since(start) < 20*time.Millisecond {
		t.Errorf("got %q after %v", body, time.Since(start))
	}
	p.Close()
	if _, err := http.Get(p.URL + "/health"); err == nil {
		t.Error("the proxy still answers after Close")
	}
	if _, err := StartProxy("not a url"); err == nil {
		t.Error("StartProxy accepted a target that is not a URL")
	}
}
