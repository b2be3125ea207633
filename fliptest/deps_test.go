package fliptest_test

import (
	"testing"

	"github.com/londonaicentre/flip/internal/importcheck"
)

// Other teams import fliptest into their tests; it must not pull the AWS
// SDK (or the cognito adapter) into their builds.
func TestFliptest_DoesNotImportTheAWSSDK(t *testing.T) {
	t.Parallel()
	importcheck.Forbid(t, "github.com/aws/", "github.com/londonaicentre/flip/cognito", "github.com/londonaicentre/flip/internal/cognitolocal")
}
