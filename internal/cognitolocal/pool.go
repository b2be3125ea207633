package cognitolocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
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

// The test helpers below fail t instead of returning an error; each has a
// counterpart for programs that are not tests (the bench command).

// must runs f with a 30-second context and fails t if f fails.
func must[T any](t testing.TB, f func(context.Context) (T, error)) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := f(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// NewUserPool creates a user pool with a unique name for this test (pools
// isolate tests sharing one emulator) and returns its id.
func NewUserPool(t testing.TB, c *cip.Client) string {
	t.Helper()
	return must(t, func(ctx context.Context) (string, error) { return CreateUserPool(ctx, c, "flip-test-") })
}

// CreateUser adds a user with this email, verified (email_verified
// "true"), to the pool, sending no message, and returns the sub the
// emulator gave it. Like Cognito's AdminCreateUser, the emulator gives it
// the status FORCE_CHANGE_PASSWORD, which seeding trusts: a pool's
// administrator made it.
func CreateUser(t testing.TB, c *cip.Client, poolID, email string) uuid.UUID {
	t.Helper()
	return CreateUserNamed(t, c, poolID, email, email)
}

// CreateUserNamed adds a verified user with this username and email, as
// CreateUser does, and returns its sub. The username can differ from the
// email only in a pool of an emulator started with PlainUsernames
// (SharedPlainUsernames); there, several users may hold one email.
func CreateUserNamed(t testing.TB, c *cip.Client, poolID, username, email string) uuid.UUID {
	t.Helper()
	return must(t, func(ctx context.Context) (uuid.UUID, error) { return AddUserNamed(ctx, c, poolID, username, email) })
}

// DisableUser disables the user with this email (its username).
func DisableUser(t testing.TB, c *cip.Client, poolID, email string) {
	t.Helper()
	must(t, func(ctx context.Context) (*cip.AdminDisableUserOutput, error) {
		out, err := c.AdminDisableUser(ctx, &cip.AdminDisableUserInput{UserPoolId: aws.String(poolID), Username: aws.String(email)})
		if err != nil {
			err = fmt.Errorf("cognitolocal: disable user %s: %w", email, err)
		}
		return out, err
	})
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

// AddUser adds a verified user with this email to the pool, as CreateUser
// does for a test.
func AddUser(ctx context.Context, c *cip.Client, poolID, email string) (uuid.UUID, error) {
	return AddUserNamed(ctx, c, poolID, email, email)
}

// AddUserNamed adds a verified user with this username and email, as
// CreateUserNamed does for a test.
func AddUserNamed(ctx context.Context, c *cip.Client, poolID, username, email string) (uuid.UUID, error) {
	return AddUserWith(ctx, c, poolID, username, EmailAttributes(email, true)...)
}

// EmailAttributes are the attributes of an account holding email:
// email, and email_verified "true" when verified (absent otherwise, as on
// an account whose owner never proved the address).
func EmailAttributes(email string, verified bool) []types.AttributeType {
	attrs := []types.AttributeType{{Name: aws.String("email"), Value: aws.String(email)}}
	if verified {
		attrs = append(attrs, types.AttributeType{Name: aws.String("email_verified"), Value: aws.String("true")})
	}
	return attrs
}

// CreateUserWith adds a user with this username and exactly these
// attributes, as an administrator does with AdminCreateUser (status
// FORCE_CHANGE_PASSWORD), and returns its sub. Leaving email_verified out
// makes an account that holds an address it never proved.
func CreateUserWith(t testing.TB, c *cip.Client, poolID, username string, attrs ...types.AttributeType) uuid.UUID {
	t.Helper()
	return must(t, func(ctx context.Context) (uuid.UUID, error) { return AddUserWith(ctx, c, poolID, username, attrs...) })
}

// AddUserWith is CreateUserWith for programs that are not tests.
func AddUserWith(ctx context.Context, c *cip.Client, poolID, username string, attrs ...types.AttributeType) (uuid.UUID, error) {
	out, err := c.AdminCreateUser(ctx, &cip.AdminCreateUserInput{
		UserPoolId:     aws.String(poolID),
		Username:       aws.String(username),
		MessageAction:  types.MessageActionTypeSuppress,
		UserAttributes: attrs,
	})
	if err != nil {
		return uuid.Nil, fmt.Errorf("cognitolocal: create user %s: %w", username, err)
	}
	for _, a := range out.User.Attributes {
		if aws.ToString(a.Name) == "sub" {
			id, err := uuid.Parse(aws.ToString(a.Value))
			if err != nil {
				return uuid.Nil, fmt.Errorf("cognitolocal: user %s has sub %q: %w", username, aws.ToString(a.Value), err)
			}
			return id, nil
		}
	}
	return uuid.Nil, errors.New("cognitolocal: user " + username + " was created without a sub")
}

// SignUp signs a user up by themselves, as anyone may in a pool that
// allows self sign-up: through an app client (created for the call), with
// this username, a password and these attributes. The account is
// UNCONFIRMED until ConfirmSignUp. The emulator, unlike Cognito, keeps an
// email_verified the caller sends; seeding must not trust it either way.
// Returns its sub.
func SignUp(t testing.TB, c *cip.Client, poolID, username string, attrs ...types.AttributeType) uuid.UUID {
	t.Helper()
	return must(t, func(ctx context.Context) (uuid.UUID, error) {
		client, err := c.CreateUserPoolClient(ctx, &cip.CreateUserPoolClientInput{
			UserPoolId: aws.String(poolID), ClientName: aws.String("flip-test-sign-up"),
		})
		if err != nil {
			return uuid.Nil, fmt.Errorf("cognitolocal: create app client: %w", err)
		}
		out, err := c.SignUp(ctx, &cip.SignUpInput{
			ClientId:       client.UserPoolClient.ClientId,
			Username:       aws.String(username),
			Password:       aws.String("Sign-up-p4ssword!"),
			UserAttributes: attrs,
		})
		if err != nil {
			return uuid.Nil, fmt.Errorf("cognitolocal: sign up %s: %w", username, err)
		}
		return uuid.Parse(aws.ToString(out.UserSub))
	})
}

// ConfirmSignUp confirms a signed-up user as an administrator does
// (AdminConfirmSignUp): UNCONFIRMED becomes CONFIRMED.
func ConfirmSignUp(t testing.TB, c *cip.Client, poolID, username string) {
	t.Helper()
	must(t, func(ctx context.Context) (*cip.AdminConfirmSignUpOutput, error) {
		out, err := c.AdminConfirmSignUp(ctx, &cip.AdminConfirmSignUpInput{UserPoolId: aws.String(poolID), Username: aws.String(username)})
		if err != nil {
			err = fmt.Errorf("cognitolocal: confirm sign-up of %s: %w", username, err)
		}
		return out, err
	})
}

// SetPermanentPassword gives a user a password of the administrator's
// choosing (AdminSetUserPassword, Permanent): the user becomes CONFIRMED,
// as after their first sign-in.
func SetPermanentPassword(t testing.TB, c *cip.Client, poolID, username string) {
	t.Helper()
	must(t, func(ctx context.Context) (*cip.AdminSetUserPasswordOutput, error) {
		out, err := c.AdminSetUserPassword(ctx, &cip.AdminSetUserPasswordInput{UserPoolId: aws.String(poolID),
			Username: aws.String(username), Password: aws.String("Perm4nent-p4ssword!"), Permanent: true})
		if err != nil {
			err = fmt.Errorf("cognitolocal: set the password of %s: %w", username, err)
		}
		return out, err
	})
}
