package cognitolocal

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/google/uuid"
)

// Static credentials for the emulator, which accepts any. Tests check that
// the secret never shows up in logs or reports.
const (
	AccessKeyID     = "AKIAFLIPTESTEMULATOR"
	SecretAccessKey = "flip-test-secret-never-logged"
	Region          = "eu-west-2"
)

// NewClient returns a Cognito client for the emulator (or a proxy in front
// of it) at endpoint, with static credentials. opts adjust it further,
// e.g. its retryer.
func NewClient(endpoint string, opts ...func(*cip.Options)) *cip.Client {
	return cip.New(cip.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	}, opts...)
}

// Client returns a client talking to the emulator directly.
func (e *Emulator) Client(opts ...func(*cip.Options)) *cip.Client { return NewClient(e.URL, opts...) }

// NewUserPool creates a user pool with a unique name for this test (pools
// isolate tests sharing one emulator) and returns its id.
func NewUserPool(t testing.TB, c *cip.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := CreateUserPool(ctx, c, "flip-test-")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// CreateUser adds a confirmed user with this email to the pool, sending no
// message, and returns the sub the emulator gave it.
func CreateUser(t testing.TB, c *cip.Client, poolID, email string) uuid.UUID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := AddUser(ctx, c, poolID, email)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// CreateUserNamed adds a confirmed user with this username and email, as
// CreateUser does, and returns its sub. The username can differ from the
// email only in a pool of an emulator started with PlainUsernames
// (SharedPlainUsernames); there, several users may hold one email.
func CreateUserNamed(t testing.TB, c *cip.Client, poolID, username, email string) uuid.UUID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := AddUserNamed(ctx, c, poolID, username, email)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// DisableUser disables the user with this email (its username).
func DisableUser(t testing.TB, c *cip.Client, poolID, email string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.AdminDisableUser(ctx, &cip.AdminDisableUserInput{UserPoolId: aws.String(poolID), Username: aws.String(email)}); err != nil {
		t.Fatalf("cognitolocal: disable user %s: %v", email, err)
	}
}
