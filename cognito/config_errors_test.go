package cognito_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
)

// The configuration faults a hub can boot with, each reached the way a
// real hub builds its client (an aws.Config, cognito.NewFromConfig), with
// no network beyond the loopback: a resolver that says the host does not
// exist, a TLS server the client does not trust, a credentials provider
// that fails. Each must be definitive, tried once, and say what to check.

// configFault is a hub configuration that cannot work, and the number of
// attempts it took.
type configFault struct {
	cfg      aws.Config
	attempts func() int
	check    string // what the error must name
}

// testAttempts is the Provider's WithMaxAttempts in these tests: a fault
// tried only once shows it was not retried.
const testAttempts = 3

func provider(cfg aws.Config, opts ...cognito.Option) *cognito.Provider {
	opts = append([]cognito.Option{cognito.WithMaxAttempts(testAttempts), cognito.WithMaxBackoff(time.Millisecond)}, opts...)
	return cognito.NewFromConfig(cfg, "eu-west-2_AbCdEf123", opts...)
}

func staticCredentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider("AKIAFLIPTESTCONFIG", "flip-test-secret", "")
}

// unresolvable is a hub whose region (or endpoint) names a host that does
// not exist: the client's dialer answers as a resolver does for NXDOMAIN,
// so no DNS server is asked.
func unresolvable(t *testing.T, dnsErr *net.DNSError) configFault {
	t.Helper()
	var dials atomic.Int32
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			dials.Add(1)
			host, _, _ := net.SplitHostPort(addr)
			e := *dnsErr
			e.Name = host
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &e}
		},
	}}
	return configFault{
		cfg:      aws.Config{Region: "eu-west-9", Credentials: staticCredentials(), HTTPClient: client},
		attempts: func() int { return int(dials.Load()) },
		check:    "region",
	}
}

// tlsServer starts a TLS server that counts the connections it accepts and
// answers nothing useful; its handshake errors are not logged.
func tlsServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "the test expects no request to arrive", http.StatusTeapot)
	}))
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// untrusted is a hub whose endpoint presents a certificate from an
// authority the client does not trust.
func untrusted(t *testing.T) configFault {
	t.Helper()
	srv, conns := tlsServer(t)
	return configFault{
		cfg:      aws.Config{Region: "eu-west-2", Credentials: staticCredentials(), BaseEndpoint: aws.String(srv.URL)},
		attempts: func() int { return int(conns.Load()) },
		check:    "certificate",
	}
}

// wrongHost is a hub whose endpoint's certificate is trusted but issued
// for other names: the test server's certificate holds 127.0.0.1 and
// example.com, not localhost.
func wrongHost(t *testing.T) configFault {
	t.Helper()
	srv, conns := tlsServer(t)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return configFault{
		cfg: aws.Config{Region: "eu-west-2", Credentials: staticCredentials(), HTTPClient: client,
			BaseEndpoint: aws.String("https://localhost:" + port)},
		attempts: func() int { return int(conns.Load()) },
		check:    "host name",
	}
}

// plainHTTP is a hub whose https endpoint is a plain HTTP port.
func plainHTTP(t *testing.T) configFault {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return configFault{
		cfg: aws.Config{Region: "eu-west-2", Credentials: staticCredentials(),
			BaseEndpoint: aws.String("https://" + srv.Listener.Addr().String())},
		attempts: func() int { return int(conns.Load()) },
		check:    "endpoint URL",
	}
}

// failingCredentials is a credentials provider that fails with err.
type failingCredentials struct {
	calls *atomic.Int32
	err   error
}

func (f failingCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	f.calls.Add(1)
	return aws.Credentials{}, f.err
}

// noCredentials is a hub whose credential chain fails with err (through
// the SDK's cache, as config.LoadDefaultConfig sets it up); the endpoint
// must never be reached.
func noCredentials(t *testing.T, err error) configFault {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a request was sent without credentials")
		http.Error(w, "unexpected", http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	var calls atomic.Int32
	return configFault{
		cfg: aws.Config{Region: "eu-west-2", BaseEndpoint: aws.String(srv.URL),
			Credentials: aws.NewCredentialsCache(failingCredentials{calls: &calls, err: err})},
		attempts: func() int { return int(calls.Load()) },
		check:    "credential chain",
	}
}

// errIMDSRefused and errIMDSTimeout are how the last link of the default
// chain, the instance metadata service, fails off EC2: network errors that
// would look transient anywhere else.
var (
	errIMDSRefused = fmt.Errorf("no EC2 IMDS role found, %w",
		&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")})
	errIMDSTimeout = fmt.Errorf("no EC2 IMDS role found, operation error ec2imds: GetMetadata, request canceled, %w",
		context.DeadlineExceeded)
)

func configFaults() map[string]func(t *testing.T) configFault {
	return map[string]func(t *testing.T) configFault{
		"UnresolvableHost": func(t *testing.T) configFault {
			return unresolvable(t, &net.DNSError{Err: "no such host", IsNotFound: true})
		},
		"UntrustedCertificate":         untrusted,
		"CertificateForAnotherHost":    wrongHost,
		"PlainHTTPBehindHTTPSEndpoint": plainHTTP,
		"NoCredentialsInTheChain": func(t *testing.T) configFault {
			return noCredentials(t, errors.New("failed to retrieve credentials: no credential providers in the chain"))
		},
		"CredentialChainRefused":  func(t *testing.T) configFault { return noCredentials(t, errIMDSRefused) },
		"CredentialChainTimedOut": func(t *testing.T) configFault { return noCredentials(t, errIMDSTimeout) },
	}
}

// eachConfigFault runs test on each of configFaults, in parallel subtests.
func eachConfigFault(t *testing.T, test func(t *testing.T, f configFault)) {
	for name, fault := range configFaults() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, fault(t))
		})
	}
}

func TestNewFromConfig_ConfigurationFaultsAreDefinitiveAndNotRetried(t *testing.T) {
	t.Parallel()
	eachConfigFault(t, func(t *testing.T, f configFault) {
		_, err := provider(f.cfg).LookupUsersByEmail(t.Context(), "ada.admin@example.com")
		ce := configError(t, err)
		if !strings.Contains(ce.Check, f.check) {
			t.Errorf("check %q, want it to name %q", ce.Check, f.check)
		}
		var ipe *flip.IdentityProviderError
		if !errors.As(err, &ipe) || ipe.Status != 0 || ipe.Code != "" {
			t.Errorf("err = %#v, want status 0 and no code", ipe)
		}
		// The seeder skips a lookup whose error matches
		// context.DeadlineExceeded; an IMDS timeout must not look like
		// the lookup's own.
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v matches context.DeadlineExceeded", err)
		}
		if n := f.attempts(); n != 1 {
			t.Errorf("%d attempts, want 1: a configuration fault is not retried", n)
		}
	})
}

func TestNewFromConfig_DNSFailureOfTheResolverIsTransient(t *testing.T) {
	t.Parallel()
	for name, dnsErr := range map[string]*net.DNSError{
		"Timeout":   {Err: "i/o timeout", IsTimeout: true},
		"Temporary": {Err: "temporary failure in name resolution", IsTemporary: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := unresolvable(t, dnsErr)
			_, err := provider(f.cfg).LookupUsersByEmail(t.Context(), "ada.admin@example.com")
			if !errors.Is(err, flip.ErrIdentityProviderUnavailable) {
				t.Fatalf("err = %v, want ErrIdentityProviderUnavailable", err)
			}
			if n := f.attempts(); n != testAttempts {
				t.Errorf("%d attempts, want %d (retried)", n, testAttempts)
			}
		})
	}
}

func TestNewFromConfig_CredentialsOutlastingTheLookupAreTransient(t *testing.T) {
	t.Parallel()
	// A credential chain still working when the lookup's own deadline
	// ends is a timeout, like any other.
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	hang := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		<-ctx.Done()
		return aws.Credentials{}, fmt.Errorf("no EC2 IMDS role found: %w", ctx.Err())
	})
	cfg := aws.Config{Region: "eu-west-2", BaseEndpoint: aws.String(srv.URL), Credentials: aws.NewCredentialsCache(hang)}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := provider(cfg).LookupUsersByEmail(ctx, "ada.admin@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Fatalf("err = %v, want ErrIdentityProviderUnavailable", err)
	}
}

func TestNewFromConfig_RefusedConnectionToALocalPortIsTransient(t *testing.T) {
	t.Parallel()
	cfg := aws.Config{Region: "eu-west-2", Credentials: staticCredentials(), BaseEndpoint: aws.String("http://" + closedPort(t))}
	_, err := provider(cfg).LookupUsersByEmail(t.Context(), "ada.admin@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Fatalf("err = %v, want ErrIdentityProviderUnavailable", err)
	}
	var ce *cognito.ConfigurationError
	if errors.As(err, &ce) {
		t.Errorf("err = %v carries a configuration hint", err)
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
