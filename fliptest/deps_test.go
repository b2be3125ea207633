package fliptest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Other teams import fliptest into their tests; it must not pull the AWS
// SDK (or the cognito adapter) into their builds.
func TestFliptest_DoesNotImportTheAWSSDK(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the package's imports: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/aws/") || pkg == "github.com/londonaicentre/flip/cognito" ||
			strings.HasPrefix(pkg, "github.com/londonaicentre/flip/internal/cognitolocal") {
			t.Errorf("fliptest depends on %s", pkg)
		}
	}
}
