package pqfeed_test

import (
	"log/slog"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cmddb/cmddbtest"
	"github.com/londonaicentre/flip/internal/feedsuite"
	"github.com/londonaicentre/flip/pqfeed"
)

// The replica scenarios every change feed passes, on lib/pq's Listener.
func TestFeed_ReplicaScenarios(t *testing.T) {
	t.Parallel()
	feedsuite.Run(t, func(_ *testing.T, db *fliptest.DB) flip.ChangeFeed { return pqfeed.New(db.URL, nil) })
}

// Every failure lib/pq's Listener reports is logged without the password,
// in every form it can be given in; lib/pq's own message quotes the part
// of an unparsable string it choked on.
func TestFeed_LogsNoPassword(t *testing.T) {
	t.Parallel()
	for _, c := range cmddbtest.RefusedDSNs {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			feedsuite.LogsNoPassword(t, c, "flip change feed", func(l *slog.Logger) flip.ChangeFeed { return pqfeed.New(c.DSN, l) })
		})
	}
}
