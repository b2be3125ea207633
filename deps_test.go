package flip_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The root package imports no database driver and no AWS SDK: pgx
// callers reach its core through flippgx and internal/bridge, so a
// program on database/sql never compiles pgx, and one on pgx never
// compiles lib/pq.
func TestFlip_ImportsNoDriver(t *testing.T) {
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
		for _, banned := range []string{"github.com/jackc/", "github.com/lib/pq", "github.com/aws/", "github.com/jmoiron/sqlx"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("flip depends on %s", pkg)
			}
		}
	}
}
