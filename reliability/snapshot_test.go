package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

// dumpLines is every row of every table (tableText), one a line, sorted:
// a heap's order is no part of the state two dumps are compared on.
func dumpLines(ctx context.Context, db *sql.DB) ([]string, error) {
	dump, err := tableText(ctx, db)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(dump, "\n"), "\n")
	slices.Sort(lines)
	return lines, nil
}

// diffLines returns the lines of before missing from after and those new
// in after, as multisets.
func diffLines(before, after []string) (gone, added []string) {
	left := map[string]int{}
	for _, l := range before {
		left[l]++
	}
	for _, l := range after {
		if left[l] > 0 {
			left[l]--
			continue
		}
		added = append(added, l)
	}
	for _, l := range before {
		if left[l] > 0 {
			left[l]--
			gone = append(gone, l)
		}
	}
	return gone, added
}

// snapshot is the legacy database as the fixture left it: every table's
// rows as JSON, to put back when a deletion that raced its fault
// committed, so that every fault point deletes the same legacy trust.
type snapshot struct {
	tables []string          // quoted names
	rows   map[string]string // JSON array per table
	lines  []string          // dumpLines of it, to check the restore
}

func takeSnapshot(ctx context.Context, db *sql.DB) (*snapshot, error) {
	s := &snapshot{rows: map[string]string{}}
	sdb := sqlx.NewDb(db, "postgres")
	if err := sdb.SelectContext(ctx, &s.tables, `SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`); err != nil {
		return nil, err
	}
	for _, tbl := range s.tables {
		var rows string
		if err := db.QueryRowContext(ctx, `SELECT coalesce(json_agg(t), '[]')::text FROM `+tbl+` t`).Scan(&rows); err != nil {
			return nil, fmt.Errorf("read %s: %w", tbl, err)
		}
		s.rows[tbl] = rows
	}
	var err error
	s.lines, err = dumpLines(ctx, db)
	return s, err
}

// restore empties every table and puts the snapshot's rows back, all in
// one INSERT statement so that the foreign keys are checked once at its
// end, whatever the order of the tables.
func (s *snapshot) restore(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, `TRUNCATE `+strings.Join(s.tables, ", ")); err != nil {
		return err
	}
	var b strings.Builder
	args := make([]any, 0, len(s.tables))
	b.WriteString("WITH ")
	for i, tbl := range s.tables {
		if i > 0 {
			b.WriteString(",\n")
		}
		args = append(args, s.rows[tbl])
		fmt.Fprintf(&b, "i%d AS (INSERT INTO %s SELECT * FROM json_populate_recordset(NULL::%s, $%d::json))", i, tbl, tbl, i+1)
	}
	b.WriteString("\nSELECT 1")
	if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
		return err
	}
	return tx.Commit()
}

// restore puts the legacy database back as the fixture left it and checks
// that it is.
func (h *faultHarness) restore(t *testing.T) {
	t.Helper()
	h.restores++
	if err := h.snap.restore(h.b.ctx, h.b.admin); err != nil {
		t.Fatalf("restore the legacy database: %v", err)
	}
	lines, err := dumpLines(h.b.ctx, h.b.admin)
	if err != nil {
		t.Fatal(err)
	}
	if gone, added := diffLines(h.snap.lines, lines); len(gone)+len(added) > 0 {
		t.Fatalf("the restored legacy database differs from the fixture: lost %q, gained %q", gone, added)
	}
}
