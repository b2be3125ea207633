package cognito

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/londonaicentre/flip"
)

// ConfigurationError is the cause (flip.IdentityProviderError.Err) of a
// lookup that failed because of how the hub reaches Cognito, not because
// Cognito is down: retrying will not help, a person has to change a
// setting. Its message says so and names what to check. Reach it with
// errors.As:
//
//	var ce *cognito.ConfigurationError
//	if errors.As(err, &ce) { log.Printf("fix the Cognito settings: %s", ce.Check) }
//
// The lookup error is definitive: errors.Is(err, flip.ErrIdentityProvider)
// holds and errors.Is(err, flip.ErrIdentityProviderUnavailable) does not,
// so flip.Seeder.SeedMainUsers stops and fails the boot.
type ConfigurationError struct {
	// Problem says what went wrong, e.g. "the Cognito endpoint's host name
	// does not resolve".
	Problem string
	// Check names the settings to check, e.g. "the AWS region and any
	// custom endpoint (aws.Config.BaseEndpoint)".
	Check string
	// Err is the SDK's error. When the credential chain failed on a
	// timeout of its own (an instance metadata service that does not
	// answer), Err keeps only the text of that error, so that
	// errors.Is(err, context.DeadlineExceeded) cannot mistake it for the
	// lookup's own deadline, which would be transient.
	Err error
}

func (e *ConfigurationError) Error() string {
	msg := "configuration problem: " + e.Problem + "; check " + e.Check
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the SDK's error.
func (e *ConfigurationError) Unwrap() error { return e.Err }

// credentialsError marks a failure of the client's credentials provider
// (see markedCredentials). The SDK wraps such failures in plain fmt errors,
// and their cause is often a network error (an instance metadata service
// that refuses or times out) that would otherwise look transient.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "retrieve AWS credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// markedCredentials wraps the client's credentials provider so that its
// failures are recognisable (credentialsError) whatever their cause.
type markedCredentials struct{ aws.CredentialsProvider }

func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		err = &credentialsError{err: err}
	}
	return creds, err
}

// IsCredentialsProvider lets aws.IsCredentialsProvider see through the
// wrapper (the SDK uses it to recognise anonymous credentials).
func (m markedCredentials) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(m.CredentialsProvider, target)
}

// ProviderSources keeps the credential source the SDK reports in its
// user agent.
func (m markedCredentials) ProviderSources() []aws.CredentialSource {
	if s, ok := m.CredentialsProvider.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}

var _ aws.CredentialProviderSource = markedCredentials{}

// credentialCodes are the error codes with which AWS refuses a request's
// credentials or signature (all arrive as HTTP 400 or 403). They are
// definitive by their status already; the code only adds a hint saying
// which setting to check.
var credentialCodes = strings.Fields(`UnrecognizedClientException InvalidSignatureException
	IncompleteSignatureException IncompleteSignature SignatureDoesNotMatch ExpiredTokenException
	ExpiredToken InvalidClientTokenId MissingAuthenticationTokenException MissingAuthenticationToken
	NotAuthorizedException AccessDeniedException`)

// classify turns an SDK error (after the SDK's own retries) into a
// *flip.IdentityProviderError of the kind the package doc lists; ctx is
// the lookup's. With an HTTP answer the status decides, not smithy's
// ErrorFault (Cognito's InternalErrorException claims a server fault even
// with 400 or 403). Without one, configuration faults are recognised
// before the network errors that would otherwise make them transient.
func classify(ctx context.Context, op string, err error) error {
	status, code := answerOf(err)
	e := &flip.IdentityProviderError{Op: op, Status: status, Code: code, Err: err, Kind: flip.ErrIdentityProvider}
	ce := configProblem(err)
	if status != 0 {
		ce = answerProblem(code, err)
	}
	_, creds := errors.AsType[*credentialsError](err)
	switch {
	case code == "UserNotFoundException": // the real service usually answers an empty list instead
		e.Kind = flip.ErrUserNotFound
	case status != 0 && transientAnswer(status, code),
		// The lookup's own time ran out while the credentials were being
		// fetched: a timeout like any other.
		status == 0 && creds && ctx.Err() != nil,
		ce == nil && status == 0 && transientNoAnswer(err):
		e.Kind = flip.ErrIdentityProviderUnavailable
	case ce != nil:
		e.Err = ce
	}
	return e
}

// answerOf returns an SDK error's HTTP status (0: no answer) and code.
func answerOf(err error) (status int, code string) {
	if re, ok := errors.AsType[*awshttp.ResponseError](err); ok {
		status = re.HTTPStatusCode()
	}
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		code = ae.ErrorCode()
	}
	return status, code
}

// transientAnswer reports whether an HTTP answer may differ later:
// throttling, 5xx, or a 2xx that broke off or could not be decoded. Any
// other 4xx (and 3xx) will not change by itself.
func transientAnswer(status int, code string) bool {
	return throttled(status, code) || status >= 500 || status >= 200 && status < 300
}

// throttled reports whether an answer says the caller is over a quota.
func throttled(status int, code string) bool {
	_, byCode := retry.DefaultThrottleErrorCodes[code]
	return byCode || status == http.StatusTooManyRequests
}

// answerProblem returns the configuration problem a definitive answer
// points at (an unknown user pool, refused credentials), or nil.
func answerProblem(code string, err error) *ConfigurationError {
	switch {
	case code == "ResourceNotFoundException": // HTTP 400 for a pool id unknown in the region
		return &ConfigurationError{"Cognito knows no such user pool in this region", "the user pool id and the AWS region", err}
	case slices.Contains(credentialCodes, code):
		return &ConfigurationError{"Cognito refused the request's credentials",
			"the AWS credentials (access key, session token and its expiry, the clock) and the IAM permission cognito-idp:ListUsers on the user pool", err}
	}
	return nil
}

// configProblem returns the configuration problem an error without an
// HTTP answer points at, or nil: a failing credentials provider, whatever
// the cause; a host name that does not resolve (a DNS timeout or temporary
// failure, the resolver's own trouble, stays transient); a TLS failure.
func configProblem(err error) *ConfigurationError {
	if has[*credentialsError](err) {
		cause := err
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			cause = errors.New(err.Error()) // the message without its chain
		}
		return &ConfigurationError{"the AWS credentials could not be retrieved",
			"the credential chain (AWS_* environment variables, the shared config and credentials files, AWS_PROFILE, the IAM role of the instance or task)", cause}
	}
	if d, ok := errors.AsType[*net.DNSError](err); ok && (d.IsNotFound || !(d.IsTimeout || d.IsTemporary)) {
		host := ""
		if d.Name != "" {
			host = `"` + d.Name + `" `
		}
		return &ConfigurationError{"the Cognito endpoint's host name " + host + "does not resolve",
			"the AWS region and any custom endpoint (aws.Config.BaseEndpoint)", err}
	}
	if tlsFailure(err) {
		return &ConfigurationError{"TLS with the Cognito endpoint failed",
			"the endpoint URL (scheme, host, port) and its certificate: issued by a trusted authority, for that host name, not expired", err}
	}
	return nil
}

// has reports whether err's tree holds an E.
func has[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}

// tlsFailure reports whether err is a TLS failure: the certificate does
// not verify (unknown authority, host name mismatch, expiry, …), the
// server sent a TLS alert, or the endpoint does not speak TLS.
func tlsFailure(err error) bool {
	op, _ := errors.AsType[*net.OpError](err)
	return has[*tls.CertificateVerificationError](err) || has[tls.AlertError](err) || has[tls.RecordHeaderError](err) ||
		has[x509.UnknownAuthorityError](err) || has[x509.HostnameError](err) || has[x509.CertificateInvalidError](err) ||
		has[x509.SystemRootsError](err) || has[x509.ConstraintViolationError](err) ||
		has[x509.UnhandledCriticalExtension](err) || has[x509.InsecureAlgorithmError](err) ||
		// crypto/tls reports an alert received from the server as a
		// *net.OpError with Op "remote error" around an unexported type.
		op != nil && op.Op == "remote error" ||
		// net/http replaces the tls.RecordHeaderError of an https request
		// to a plain-HTTP port with this message and no type of its own.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// transientNoAnswer reports whether a failure without an HTTP answer, and
// not a configuration problem, may pass if the lookup is tried again: a
// timeout, the lookup's context ending, or a refused, reset or dropped
// connection. Anything else (no region) will not pass by retrying.
func transientNoAnswer(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		has[net.Error](err) || has[*smithyhttp.RequestSendError](err)
}
