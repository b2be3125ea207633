package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

// A pool that grows on a miss from a slot-name source (WithSlotNameSource),
// on every schema variant.

// namesFile writes content to a file of the test's and returns a source
// reading it.
func namesFile(t *testing.T, content string) flip.SlotNameSource {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slot-names.json")
	must(t, os.WriteFile(path, []byte(content), 0o600))
	return flip.SlotNamesFromFile(path)
}

func poolNames(t *testing.T, b bundle) []string {
	t.Helper()
	stats, err := store.CountSlots(b.ctx, b.db)
	must(t, err)
	names := []string{}
	eachRow(t, b.ctx, b.db, `SELECT slot_name FROM fl_kit_slot ORDER BY slot_name`, func(rows *sql.Rows) error {
		var n string
		err := rows.Scan(&n)
		names = append(names, n)
		return err
	})
	if stats.Total != len(names) {
		t.Fatalf("PoolStats says %d slots, the table has %d", stats.Total, len(names))
	}
	return names
}

func TestSlotNameSource_GrowsAnEmptyPoolOnce(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v, flip.WithSlotNameSource(namesFile(t, `["Trust_003", "Trust_001", " Trust_002 ", "", "bad\u0007name"]`)))
		res := b.mustRegister(t, flip.TrustParams{Name: "First", Code: "F1"})
		if res.KitSlot.Name != "Trust_001" || res.KitSlot.Number != 1 || !slices.Equal(res.AddedKitSlots, []string{"Trust_001", "Trust_002", "Trust_003"}) {
			t.Fatalf("result = %v, added %v; want Trust_001 from three added names", res, res.AddedKitSlots)
		}
		second := b.mustRegister(t, flip.TrustParams{Name: "Second", Code: "S2"})
		if second.KitSlot.Name != "Trust_002" || len(second.AddedKitSlots) != 0 {
			t.Errorf("second registration = %v, added %v; want Trust_002 from the pool, nothing added", second, second.AddedKitSlots)
		}
		if got := poolNames(t, b); !slices.Equal(got, []string{"Trust_001", "Trust_002", "Trust_003"}) {
			t.Errorf("pool = %v", got)
		}
		checkInvariants(t, b.ctx, b.db)
	})
}

// Nothing new in the source, or a source that cannot be read: the answer
// is still ErrNoFreeKitSlot, saying what the source held, and nothing is
// written.
func TestSlotNameSource_NothingNewIsStillNoFreeSlot(t *testing.T) {
	t.Setenv("FLIP_TEST_SLOT_NAMES_MALFORMED", `{"Trust_009": true}`)
	cases := []struct {
		name   string
		source func(t *testing.T) flip.SlotNameSource
		says   string
	}{
		{"all names taken", func(t *testing.T) flip.SlotNameSource { return namesFile(t, `["Trust_001"]`) }, "it held 1 names, 0 added"},
		{"empty list", func(t *testing.T) flip.SlotNameSource { return namesFile(t, `[]`) }, "it held 0 names"},
		{"malformed file", func(t *testing.T) flip.SlotNameSource { return namesFile(t, `Trust_001, Trust_002`) }, "not a JSON list of strings"},
		{"missing file", func(t *testing.T) flip.SlotNameSource {
			return flip.SlotNamesFromFile(filepath.Join(t.TempDir(), "none.json"))
		}, "no such file"},
		{"unset variable", func(*testing.T) flip.SlotNameSource { return flip.SlotNamesFromEnv("FLIP_TEST_SLOT_NAMES_UNSET") }, "FLIP_TEST_SLOT_NAMES_UNSET is not set"},
		{"malformed variable", func(*testing.T) flip.SlotNameSource { return flip.SlotNamesFromEnv("FLIP_TEST_SLOT_NAMES_MALFORMED") }, "environment variable FLIP_TEST_SLOT_NAMES_MALFORMED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&log, nil))
			b := setup(t, variants[0], flip.WithSlotNameSource(c.source(t)), flip.WithLogger(logger))
			fliptest.AddSlots(t, b.db, "Trust_001")
			b.mustRegister(t, flip.TrustParams{Name: "Holder", Code: "H"})
			before := fliptest.DumpTables(t, b.db)
			_, err := b.register(t, flip.TrustParams{Name: "Late", Code: "L"})
			if !errors.Is(err, flip.ErrNoFreeKitSlot) || !strings.Contains(err.Error(), "was consulted") || !strings.Contains(err.Error()+log.String(), c.says) {
				t.Errorf("error = %v\nlog:\n%s\nwant ErrNoFreeKitSlot saying the source was consulted and %q", err, log.String(), c.says)
			}
			if fliptest.DumpTables(t, b.db) != before {
				t.Error("a registration that found no slot changed the database")
			}
		})
	}
}

// Registrations that find the pool empty at once grow it together: each
// name is added once, nobody fails for it, and every trust gets its own
// slot.
func TestSlotNameSource_ConcurrentGrowth(t *testing.T) {
	t.Parallel()
	const n = 8
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf(`"Trust_%03d"`, i+1)
	}
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v, flip.WithSlotNameSource(namesFile(t, "["+strings.Join(names, ",")+"]")))
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				_, err := b.register(t, flip.TrustParams{Name: fmt.Sprintf("Concurrent %d", i), Code: fmt.Sprintf("C%d", i)})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent growth: %v", err)
			}
		}
		if got := poolNames(t, b); len(got) != n {
			t.Errorf("pool holds %d slots, want %d: %v", len(got), n, got)
		}
		checkInvariants(t, b.ctx, b.db)
	})
}

// A registration whose caller rolls back takes the slots it added with it.
func TestSlotNameSource_RollbackTakesTheAddedSlots(t *testing.T) {
	t.Parallel()
	b := setup(t, variants[0], flip.WithSlotNameSource(namesFile(t, `["Trust_001"]`)))
	tx, err := b.db.BeginTx(b.ctx, nil)
	must(t, err)
	res, err := b.reg.RegisterTrust(context.Background(), tx, flip.TrustParams{Name: "Undone", Code: "U"})
	if err != nil || len(res.AddedKitSlots) != 1 {
		t.Fatalf("RegisterTrust = %v, %v", res, err)
	}
	must(t, tx.Rollback())
	if got := poolNames(t, b); len(got) != 0 {
		t.Errorf("pool after rollback = %v, want empty", got)
	}
}
