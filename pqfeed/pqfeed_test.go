package pqfeed_test

import (
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/feedsuite"
	"github.com/londonaicentre/flip/pqfeed"
)

// The replica scenarios every change feed passes, on lib/pq's Listener.
func TestFeed_ReplicaScenarios(t *testing.T) {
	t.Parallel()
	feedsuite.Run(t, func(_ *testing.T, db *fliptest.DB) flip.ChangeFeed { return pqfeed.New(db.URL, nil) })
}
