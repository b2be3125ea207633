// Package importcheck lets a package's tests prove what it does not
// compile in: the root package no driver and no AWS SDK, fliptest not the
// Cognito adapter. Only tests import it.
package importcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// Forbid fails t for every package that the package in the current
// directory (a test's own) depends on, directly or not, whose import path
// starts with one of banned.
func Forbid(t *testing.T, banned ...string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the package's imports: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, b := range banned {
			if strings.HasPrefix(pkg, b) {
				t.Errorf("the package depends on %s", pkg)
			}
		}
	}
}
