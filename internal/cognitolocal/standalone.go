package cognitolocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/google/uuid"
)

// Entry points for programs that are not tests (the bench command): the
// same emulator, proxy, pools and users as the test helpers, returning
// errors instead of failing a testing.TB, and closed by the caller instead
// of at the end of a test. Start (emulator.go) already works outside a
// test; stop what it returns with Stop.

// StartProxy starts a Proxy in front of target (the emulator's URL), as
// NewProxy does for a test. Close it when done.
func StartProxy(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("cognitolocal: proxy target %q: %w", target, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("cognitolocal: proxy target %q: want an absolute URL", target)
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

// CreateUserPool creates a user pool with a unique name starting with
// prefix and returns its id, as NewUserPool does for a test.
func CreateUserPool(ctx context.Context, c *cip.Client, prefix string) (string, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	out, err := c.CreateUserPool(ctx, &cip.CreateUserPoolInput{PoolName: aws.String(prefix + hex.EncodeToString(b[:]))})
	if err != nil {
		return "", fmt.Errorf("cognitolocal: create user pool: %w", err)
	}
	return aws.ToString(out.UserPool.Id), nil
}

// AddUser adds a confirmed user with this email to the pool, sending no
// message, and returns the sub the emulator gave it, as CreateUser does for
// a test.
func AddUser(ctx context.Context, c *cip.Client, poolID, email string) (uuid.UUID, error) {
	return AddUserNamed(ctx, c, poolID, email, email)
}

// AddUserNamed adds a confirmed user with this username and email, as
// CreateUserNamed does for a test.
func AddUserNamed(ctx context.Context, c *cip.Client, poolID, username, email string) (uuid.UUID, error) {
	out, err := c.AdminCreateUser(ctx, &cip.AdminCreateUserInput{
		UserPoolId:    aws.String(poolID),
		Username:      aws.String(username),
		MessageAction: types.MessageActionTypeSuppress,
		UserAttributes: []types.AttributeType{
			{Name: aws.String("email"), Value: aws.String(email)},
			{Name: aws.String("email_verified"), Value: aws.String("true")},
		},
	})
	if err != nil {
		return uuid.Nil, fmt.Errorf("cognitolocal: create user %s: %w", email, err)
	}
	for _, a := range out.User.Attributes {
		if aws.ToString(a.Name) == "sub" {
			id, err := uuid.Parse(aws.ToString(a.Value))
			if err != nil {
				return uuid.Nil, fmt.Errorf("cognitolocal: user %s has sub %q: %w", email, aws.ToString(a.Value), err)
			}
			return id, nil
		}
	}
	return uuid.Nil, errors.New("cognitolocal: user " + email + " was created without a sub")
}
