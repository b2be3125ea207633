package cognito

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/londonaicentre/flip"
)

// codeUserNotFound is how Cognito (and cognito-local) say the user does
// not exist; the real service usually answers an empty list instead.
const codeUserNotFound = "UserNotFoundException"

// codeUnknownPool is Cognito's answer (HTTP 400) for a user pool id that
// does not exist in the region the client calls.
const codeUnknownPool = "ResourceNotFoundException"

// credentialCodes are the error codes with which AWS refuses a request's
// credentials or signature (all arrive as HTTP 400 or 403). They are
// definitive by their status already; the code only adds a hint saying
// which setting to check.
var credentialCodes = map[string]bool{
	"UnrecognizedClientException":         true,
	"InvalidSignatureException":           true,
	"IncompleteSignatureException":        true,
	"IncompleteSignature":                 true,
	"SignatureDoesNotMatch":               true,
	"ExpiredTokenException":               true,
	"ExpiredToken":                        true,
	"InvalidClientTokenId":                true,
	"MissingAuthenticationTokenException": true,
	"MissingAuthenticationToken":          true,
	"NotAuthorizedException":              true,
	"AccessDeniedException":               true,
}

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

// credentialsError marks a failure of the client's credentials provider.
// The SDK wraps such failures in plain fmt errors ("get identity: get
// credentials: …"), and their cause is often a network error (an instance
// metadata service that refuses or times out) that would otherwise look
// transient; Provider wraps the client's provider for each call
// (markCredentials) so that they can be told apart by type.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "retrieve AWS credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// textError is an error's message without its chain.
type textError string

func (e textError) Error() string { return string(e) }

// classify turns an SDK error (after the SDK's own retries) into a
// *flip.IdentityProviderError of the right kind; ctx is the lookup's.
//
// With an HTTP answer, the status decides, not smithy's ErrorFault
// (Cognito's InternalErrorException claims a server fault even with 400 or
// 403): 5xx, 429 and the SDK's throttling codes (Cognito throttles with 400
// TooManyRequestsException) are transient; any other status is
// definitive, and for an unknown user pool or refused credentials the
// cause is a *ConfigurationError naming what to check.
//
// Without an answer (status 0), configuration faults are recognised first
// and are definitive (see configProblem); then a timeout, the lookup's
// context ending, or a refused, reset or dropped connection is transient;
// anything else (no region, an endpoint that cannot be resolved) is
// definitive.
func classify(ctx context.Context, op string, err error) error {
	e := &flip.IdentityProviderError{Op: op, Err: err, Kind: flip.ErrIdentityProvider}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e.Code = apiErr.ErrorCode()
	}
	switch {
	case e.Code == codeUserNotFound:
		e.Kind = flip.ErrUserNotFound
	case e.Status != 0:
		if transientAnswer(e.Status, e.Code) {
			e.Kind = flip.ErrIdentityProviderUnavailable
		} else if ce := answerProblem(e.Code, err); ce != nil {
			e.Err = ce
		}
	default:
		if ce := configProblem(err); ce != nil {
			var cred *credentialsError
			if errors.As(err, &cred) && ctx.Err() != nil {
				// The lookup's own time ran out while the credentials
				// were being fetched: a timeout like any other.
				e.Kind = flip.ErrIdentityProviderUnavailable
				break
			}
			e.Err = ce
		} else if transientNoAnswer(err) {
			e.Kind = flip.ErrIdentityProviderUnavailable
		}
	}
	return e
}

// transientAnswer reports whether an HTTP answer with this status and
// error code may differ if the lookup is tried again later.
func transientAnswer(status int, code string) bool {
	if throttled(status, code) {
		return true
	}
	switch {
	case status >= 500:
		return true
	case status >= 200 && status < 300:
		// An answer that broke off or could not be decoded.
		return true
	}
	return false // any other 4xx (and 3xx) will not change by itself
}

// throttled reports whether an answer says the caller is over a quota.
func throttled(status int, code string) bool {
	_, byCode := retry.DefaultThrottleErrorCodes[code]
	return byCode || status == http.StatusTooManyRequests
}

// answerProblem returns the configuration problem a definitive answer
// points at, or nil.
func answerProblem(code string, err error) *ConfigurationError {
	switch {
	case code == codeUnknownPool:
		return &ConfigurationError{
			Problem: "Cognito knows no such user pool in this region",
			Check:   "the user pool id and the AWS region",
			Err:     err,
		}
	case credentialCodes[code]:
		return &ConfigurationError{
			Problem: "Cognito refused the request's credentials",
			Check:   "the AWS credentials (access key, session token and its expiry, the clock) and the IAM permission cognito-idp:ListUsers on the user pool",
			Err:     err,
		}
	}
	return nil
}

// configProblem returns the configuration problem an error without an
// HTTP answer points at, or nil:
//   - the credentials provider failed, whatever the cause (no credentials
//     in the chain, an instance metadata service that refuses or times
//     out, an assume-role call that is denied);
//   - the endpoint's host name does not resolve: a *net.DNSError that is
//     not-found, or neither a timeout nor temporary (a DNS timeout or
//     temporary failure, the resolver's own trouble, stays transient);
//   - TLS failed: the certificate does not verify (unknown authority,
//     host name mismatch, expired: *tls.CertificateVerificationError and
//     the x509 errors), the server sent a TLS alert, the answer was not
//     TLS, or an https endpoint answered in plain HTTP.
func configProblem(err error) *ConfigurationError {
	var cred *credentialsError
	if errors.As(err, &cred) {
		cause := err
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			cause = textError(err.Error())
		}
		return &ConfigurationError{
			Problem: "the AWS credentials could not be retrieved",
			Check:   "the credential chain (AWS_* environment variables, the shared config and credentials files, AWS_PROFILE, the IAM role of the instance or task)",
			Err:     cause,
		}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && (dnsErr.IsNotFound || !(dnsErr.IsTimeout || dnsErr.IsTemporary)) {
		return &ConfigurationError{
			Problem: "the Cognito endpoint's host name " + quoteHost(dnsErr.Name) + "does not resolve",
			Check:   "the AWS region and any custom endpoint (aws.Config.BaseEndpoint)",
			Err:     err,
		}
	}
	if tlsFailure(err) {
		return &ConfigurationError{
			Problem: "TLS with the Cognito endpoint failed",
			Check:   "the endpoint URL (scheme, host, port) and its certificate: issued by a trusted authority, for that host name, not expired",
			Err:     err,
		}
	}
	return nil
}

func quoteHost(name string) string {
	if name == "" {
		return ""
	}
	return `"` + name + `" `
}

// tlsFailure reports whether err is a TLS failure: certificate
// verification, an alert from the server, or an endpoint that does not
// speak TLS.
func tlsFailure(err error) bool {
	var (
		verifyErr  *tls.CertificateVerificationError
		alertErr   tls.AlertError
		recordErr  tls.RecordHeaderError
		authority  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		roots      x509.SystemRootsError
		constraint x509.ConstraintViolationError
		critical   x509.UnhandledCriticalExtension
		insecure   x509.InsecureAlgorithmError
		opErr      *net.OpError
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &alertErr), errors.As(err, &recordErr),
		errors.As(err, &authority), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &roots), errors.As(err, &constraint), errors.As(err, &critical),
		errors.As(err, &insecure):
		return true
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports an alert received from the server (handshake
		// failure, bad certificate, protocol version) as a *net.OpError
		// with Op "remote error" around an unexported alert type.
		return true
	}
	// net/http replaces the tls.RecordHeaderError of an https request to a
	// plain-HTTP port with this message and no type of its own.
	return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// transientNoAnswer reports whether a failure without an HTTP answer, and
// not a configuration problem, may pass if the lookup is tried again: a
// timeout, the lookup's context ending, or a refused, reset or dropped
// connection to a host that resolved. Anything else (no region, an
// endpoint that cannot be resolved) is a configuration problem that
// retrying will not fix.
func transientNoAnswer(err error) bool {
	var (
		netErr  net.Error
		sendErr *smithyhttp.RequestSendError
	)
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &netErr) ||
		errors.As(err, &sendErr)
}
