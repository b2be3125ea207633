package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/callertx"
	"github.com/londonaicentre/flip/internal/faultdb"
	"github.com/londonaicentre/flip/internal/pgsql"
	"github.com/londonaicentre/flip/store"
)

func TestRegisterTrust_StoresHashAuditAndSlot(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_002", "Trust_001", "Spare")
		admin := uuid.New()
		before := time.Now().UTC().Add(-time.Second)
		res := b.mustRegister(t, flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT", Region: "London", AuditUserID: admin})

		if err := flip.CheckKey(flip.TrustAPIKey, res.APIKey.Reveal()); err != nil {
			t.Errorf("API key malformed: %v", err)
		}
		if err := flip.CheckKey(flip.InternalServiceKey, res.InternalServiceKey.Reveal()); err != nil {
			t.Errorf("internal-service key malformed: %v", err)
		}
		if res.APIKey.Reveal() == res.InternalServiceKey.Reveal() {
			t.Error("the two keys are equal")
		}

		var (
			name, code, hash string
			region           sql.NullString
			createdAt        time.Time
		)
		err := b.db.QueryRowContext(b.ctx, `SELECT name, code, region, api_key_hash, created_at FROM trust WHERE id = $1`, res.Trust.ID).
			Scan(&name, &code, &region, &hash, &createdAt)
		if err != nil {
			t.Fatalf("read trust: %v", err)
		}
		if name != "Guy's and St Thomas'" || code != "GSTT" || region.String != "London" {
			t.Errorf("stored %q %q %q", name, code, region.String)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(hash) || hash != flip.HashAPIKey(res.APIKey.Reveal()) {
			t.Errorf("api_key_hash = %q, want hex sha256 of the API key", hash)
		}
		if createdAt.Before(before) || !createdAt.Equal(res.Trust.CreatedAt) {
			t.Errorf("created_at = %v, result says %v", createdAt, res.Trust.CreatedAt)
		}

		dump := fliptest.DumpTables(t, b.db)
		if strings.Contains(dump, res.APIKey.Reveal()) {
			t.Error("plaintext API key stored")
		}
		if strings.Contains(dump, res.InternalServiceKey.Reveal()) || strings.Contains(dump, flip.HashAPIKey(res.InternalServiceKey.Reveal())) {
			t.Error("internal-service key (or its hash) stored")
		}

		var (
			action, auditName string
			by                uuid.NullUUID
			subject           uuid.NullUUID
			auditDate         time.Time
		)
		err = b.db.QueryRowContext(b.ctx, `SELECT action::text, trust_name, modified_by_user_id, subject_user_id, audit_date FROM trusts_audit WHERE trust_id = $1`, res.Trust.ID).
			Scan(&action, &auditName, &by, &subject, &auditDate)
		if err != nil {
			t.Fatalf("read audit: %v", err)
		}
		if action != "REGISTERED" || auditName != name || by.UUID != admin || subject.Valid || !auditDate.Equal(createdAt) {
			t.Errorf("audit row = %s %q by=%v subject=%v at %v", action, auditName, by, subject, auditDate)
		}

		if res.KitSlot.Name != "Trust_001" || res.KitSlot.Number != 1 || res.KitSlot.AssignedTo != res.Trust.ID || !res.KitSlot.AssignedAt.Equal(createdAt) {
			t.Errorf("kit slot = %+v", res.KitSlot)
		}
		slot, err := store.KitSlotOf(b.ctx, b.db, res.Trust.ID)
		if err != nil || slot != res.KitSlot {
			t.Errorf("stored slot = %+v, %v; want %+v", slot, err, res.KitSlot)
		}
		checkInvariants(t, b.ctx, b.db)
	})
}

func TestRegisterTrust_DeployPathAuditsNullUser(t *testing.T) {
	t.Parallel()
	b := setup(t, variants[0])
	fliptest.AddSlots(t, b.db, "Trust_001")
	res := b.mustRegister(t, flip.TrustParams{Name: "North", Code: "N1"})
	var by uuid.NullUUID
	if err := b.db.QueryRowContext(b.ctx, `SELECT modified_by_user_id FROM trusts_audit WHERE trust_id = $1`, res.Trust.ID).Scan(&by); err != nil {
		t.Fatal(err)
	}
	if by.Valid {
		t.Errorf("modified_by_user_id = %v, want NULL", by.UUID)
	}
}

func TestRegisterTrust_TrimsAndStoresBlankRegionAsNull(t *testing.T) {
	t.Parallel()
	b := setup(t, variants[0])
	fliptest.AddSlots(t, b.db, "Trust_001")
	res := b.mustRegister(t, flip.TrustParams{Name: " \t King's College\u00a0\n", Code: "\u2003KCH ", Region: "  \u3000 "})
	if res.Trust.Name != "King's College" || res.Trust.Code != "KCH" || res.Trust.Region != "" {
		t.Errorf("result = %q %q %q", res.Trust.Name, res.Trust.Code, res.Trust.Region)
	}
	var (
		name, code string
		region     sql.NullString
	)
	if err := b.db.QueryRowContext(b.ctx, `SELECT name, code, region FROM trust`).Scan(&name, &code, &region); err != nil {
		t.Fatal(err)
	}
	if name != "King's College" || code != "KCH" || region.Valid {
		t.Errorf("stored %q %q %v", name, code, region)
	}
}

func TestRegisterTrust_RejectsBadInputBeforeAnyStatement(t *testing.T) {
	t.Parallel()
	b := setup(t, variants[0])
	fliptest.AddSlots(t, b.db, "Trust_001")
	long := strings.Repeat("é", flip.MaxNameLength+1)
	cases := []struct {
		name   string
		p      flip.TrustParams
		target error
		field  string
	}{
		{"empty name", flip.TrustParams{Name: "", Code: "C"}, flip.ErrEmptyTrustName, "name"},
		{"blank name", flip.TrustParams{Name: " \t\u2003\n", Code: "C"}, flip.ErrEmptyTrustName, "name"},
		{"empty code", flip.TrustParams{Name: "N", Code: ""}, flip.ErrEmptyTrustCode, "code"},
		{"blank code", flip.TrustParams{Name: "N", Code: "\u3000 "}, flip.ErrEmptyTrustCode, "code"},
		{"format character in code", flip.TrustParams{Name: "N", Code: "\ufeffC"}, flip.ErrInvalidTrustParams, "code"},
		{"path in code", flip.TrustParams{Name: "N", Code: "../../etc/passwd"}, flip.ErrInvalidTrustParams, "code"},
		{"override in name", flip.TrustParams{Name: "Evil \u202eTSGG", Code: "C"}, flip.ErrInvalidTrustParams, "name"},
		{"NUL in name", flip.TrustParams{Name: "a\x00b", Code: "C"}, flip.ErrInvalidTrustParams, "name"},
		{"NUL in code", flip.TrustParams{Name: "N", Code: "C\x00"}, flip.ErrInvalidTrustParams, "code"},
		{"invalid UTF-8", flip.TrustParams{Name: "caf\xe9", Code: "C"}, flip.ErrInvalidTrustParams, "name"},
		{"control char", flip.TrustParams{Name: "two\nlines", Code: "C"}, flip.ErrInvalidTrustParams, "name"},
		{"escape in region", flip.TrustParams{Name: "N", Code: "C", Region: "x\x1b[31m"}, flip.ErrInvalidTrustParams, "region"},
		{"name too long", flip.TrustParams{Name: long, Code: "C"}, flip.ErrInvalidTrustParams, "name"},
		{"code too long", flip.TrustParams{Name: "N", Code: strings.Repeat("C", flip.MaxCodeLength+1)}, flip.ErrInvalidTrustParams, "code"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tx, err := b.db.BeginTx(b.ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback() //nolint:errcheck // test cleanup
			counter := &faultdb.DB{Next: tx}
			_, err = b.reg.RegisterTrust(b.ctx, counter, tc.p)
			if e := isOnly(err, tc.target, flip.ErrInvalidTrustParams, flip.ErrTrustRegistration); e != nil {
				t.Fatal(e)
			}
			var invalid *flip.InvalidTrustParamError
			if !errors.As(err, &invalid) || invalid.Field != tc.field {
				t.Errorf("errors.As InvalidTrustParamError = %+v, want field %q", invalid, tc.field)
			}
			if n := len(counter.Stmts()); n != 0 {
				t.Errorf("%d statements sent before validation failed", n)
			}
			if strings.Contains(err.Error(), "pq:") || strings.Contains(err.Error(), "SQLSTATE") {
				t.Errorf("driver error leaked: %v", err)
			}
		})
	}
}

func TestRegisterTrust_RefusesDuplicateNameAndCode(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_001..Trust_005")
		first := b.mustRegister(t, flip.TrustParams{Name: "Alpha", Code: "ALP"})
		cases := []struct {
			p     flip.TrustParams
			field string
		}{
			{flip.TrustParams{Name: "Alpha", Code: "OTHER"}, "name"},
			{flip.TrustParams{Name: "  Alpha ", Code: "OTHER"}, "name"},
			{flip.TrustParams{Name: "Beta", Code: "alp"}, "code"},
			{flip.TrustParams{Name: "Beta", Code: "ALP"}, "code"},
		}
		for _, tc := range cases {
			before := snapshot(t, b.ctx, b.db)
			_, err := b.register(t, tc.p)
			if e := isOnly(err, flip.ErrDuplicateTrust, flip.ErrTrustRegistration); e != nil {
				t.Fatalf("%+v: %v", tc.p, e)
			}
			var dup *flip.DuplicateTrustError
			if !errors.As(err, &dup) || dup.Field != tc.field || dup.Existing == nil || dup.Existing.ID != first.Trust.ID {
				t.Errorf("%+v: DuplicateTrustError = %+v", tc.p, dup)
			}
			if after := snapshot(t, b.ctx, b.db); after != before {
				t.Errorf("failed registration changed the tables: %+v → %+v", before, after)
			}
		}
		// A name differing only in letter case is the same trust.
		if _, err := b.register(t, flip.TrustParams{Name: "aLPHA", Code: "ALP2"}); !errors.Is(err, flip.ErrDuplicateTrust) {
			t.Errorf("a name in other letter case: %v, want a duplicate", err)
		}
		checkInvariants(t, b.ctx, b.db)
	})
}

func TestRegisterTrust_PoolExhaustionUnderConcurrency(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_001..Trust_050")
		const callers = 64
		results := runConcurrently(t, b, callers, func(i int) flip.TrustParams {
			return flip.TrustParams{Name: "Trust " + uuid.NewString(), Code: uuid.NewString()[:8]}
		})
		// A loser finds the pool empty, or busy (every free slot locked by a
		// winner that has not committed yet); retried, a busy one finds it
		// empty.
		ok, noSlot := 0, 0
		for i, err := range results {
			if errors.Is(err, flip.ErrKitSlotsBusy) && errors.Is(err, flip.ErrRetryable) && !errors.Is(err, flip.ErrNoFreeKitSlot) {
				_, err = b.register(t, flip.TrustParams{Name: fmt.Sprintf("Retry %d", i), Code: fmt.Sprintf("R%d", i)})
			}
			switch {
			case err == nil:
				ok++
			case errors.Is(err, flip.ErrNoFreeKitSlot) && errors.Is(err, flip.ErrTrustRegistration):
				noSlot++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 50 || noSlot != 14 {
			t.Errorf("%d successes and %d ErrNoFreeKitSlot, want 50 and 14", ok, noSlot)
		}
		c := snapshot(t, b.ctx, b.db)
		if c.trusts != 50 || c.assigned != 50 || c.audits != 50 {
			t.Errorf("tables after the race: %+v", c)
		}
		var doubly int
		if err := b.db.QueryRowContext(b.ctx, `SELECT count(*) FROM (SELECT assigned_to_trust_id FROM fl_kit_slot WHERE assigned_to_trust_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d`).Scan(&doubly); err != nil {
			t.Fatal(err)
		}
		if doubly != 0 {
			t.Errorf("%d trusts hold more than one slot", doubly)
		}
		checkInvariants(t, b.ctx, b.db)
	})
}

func TestRegisterTrust_SameNameUnderRace(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_001..Trust_040")
		for _, race := range []struct {
			what   string
			params func(i int) flip.TrustParams
		}{
			{"name", func(i int) flip.TrustParams { return flip.TrustParams{Name: "Contested", Code: uuid.NewString()[:8]} }},
			{"code", func(i int) flip.TrustParams {
				return flip.TrustParams{Name: uuid.NewString(), Code: []string{"dup", "DUP", "Dup"}[i%3]}
			}},
		} {
			results := runConcurrently(t, b, 32, race.params)
			ok := 0
			for _, err := range results {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, flip.ErrDuplicateTrust):
					t.Errorf("same %s: unexpected error %v", race.what, err)
				}
			}
			if ok != 1 {
				t.Errorf("same %s: %d registrations succeeded, want exactly 1", race.what, ok)
			}
		}
		checkInvariants(t, b.ctx, b.db)
	})
}

var wideRace = make(chan struct{}, 1)

// runConcurrently registers n trusts at once, each on its own connection
// and transaction, released together so they really overlap.
func runConcurrently(t *testing.T, b bundle, n int, params func(i int) flip.TrustParams) []error {
	t.Helper()
	// PostgreSQL allows 100 connections by default: one wide race at a time.
	wideRace <- struct{}{}
	defer func() {
		if b.Pgx != nil { // a pgx pool keeps every idle connection: close them before the next race
			b.Pgx.Reset()
		}
		<-wideRace
	}()
	b.db.SetMaxOpenConns(n)
	txs := make([]callertx.Tx, n)
	for i := range txs {
		txs[i] = b.begin(t)
		// Ended however the test ends: a pgx pool's Close, at cleanup,
		// waits for every transaction still open (one a failure left
		// behind would hang the test binary instead of failing the test).
		t.Cleanup(func() { _ = txs[i].Rollback(context.Background()) })
		// Make sure each transaction really holds its own connection.
		if err := txs[i].Exec(b.ctx, `SELECT 1`); err != nil {
			t.Fatalf("warm %d: %v", i, err)
		}
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := txs[i].RegisterTrust(b.ctx, b.reg, params(i))
			if err == nil {
				err = txs[i].Commit(b.ctx)
				if err != nil {
					errs[i] = err
					return
				}
			} else {
				_ = txs[i].Rollback(b.ctx)
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func TestRegisterTrust_CallerTransactionSurvivesEveryError(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_001")
		b.mustRegister(t, flip.TrustParams{Name: "Taken", Code: "TKN"})
		failing := []struct {
			name   string
			reg    *flip.Registry
			p      flip.TrustParams
			target error
			fault  func(context.Context, faultdb.Stmt) faultdb.Fault // on the caller's transaction, when set
		}{
			{"invalid", b.reg, flip.TrustParams{Name: "", Code: "X"}, flip.ErrEmptyTrustName, nil},
			{"duplicate name", b.reg, flip.TrustParams{Name: "Taken", Code: "X"}, flip.ErrDuplicateTrust, nil},
			{"duplicate code", b.reg, flip.TrustParams{Name: "Fresh", Code: "tkn"}, flip.ErrDuplicateTrust, nil},
			{"no free slot", b.reg, flip.TrustParams{Name: "Fresh", Code: "FRS"}, flip.ErrNoFreeKitSlot, nil},
			{"minter fails", flip.NewRegistry(store.New(), flip.WithKeyMinter(failingMinter{})), flip.TrustParams{Name: "Fresh", Code: "FRS"}, errMint, nil},
			// The claim runs (the pool is empty: it updates nothing), then
			// its answer is lost: a failure after the trust was written.
			{"store fails mid-way", b.reg, flip.TrustParams{Name: "Fresh", Code: "FRS"}, errSlots, failRegister(faultdb.Fault{ErrAfter: errSlots})},
		}
		for _, f := range failing {
			t.Run(f.name, func(t *testing.T) {
				before := snapshot(t, b.ctx, b.db)
				tx := b.begin(t)
				defer tx.Rollback(b.ctx) //nolint:errcheck // no-op after Commit
				// The caller's own work before and after the failed call.
				marker := uuid.New()
				if err := tx.Exec(b.ctx, `INSERT INTO roles (id, name, description, created_at, updated_at) VALUES ($1, $2, 'marker', now(), now())`, marker, "Marker "+f.name); err != nil {
					t.Fatal(err)
				}
				caller := tx
				if f.fault != nil {
					caller = tx.WithFaults(f.fault)
				}
				_, err := caller.RegisterTrust(b.ctx, f.reg, f.p)
				if e := isOnly(err, f.target, flip.ErrTrustRegistration); e != nil {
					t.Fatal(e)
				}
				if err := tx.Exec(b.ctx, `UPDATE roles SET description = 'after' WHERE id = $1`, marker); err != nil {
					t.Fatalf("transaction unusable after %s: %v", f.name, err)
				}
				if err := tx.Commit(b.ctx); err != nil {
					t.Fatalf("commit after %s: %v", f.name, err)
				}
				if after := snapshot(t, b.ctx, b.db); after != before {
					t.Errorf("after committing past a failed call: %+v, want %+v", after, before)
				}
				var desc string
				if err := b.db.QueryRowContext(b.ctx, `SELECT description FROM roles WHERE id = $1`, marker).Scan(&desc); err != nil || desc != "after" {
					t.Errorf("the caller's own work was lost: %q, %v", desc, err)
				}
			})
		}
		checkInvariants(t, b.ctx, b.db)
	})
}

var (
	errMint  = errors.New("entropy exhausted")
	errSlots = errors.New("slot store down")
)

type failingMinter struct{}

func (failingMinter) MintKey(flip.KeyKind) (string, error) { return "", errMint }

// failRegister applies f to the first registration statement (duplicate
// check and writes, pgsql.Register) a registration sends.
func failRegister(f faultdb.Fault) func(context.Context, faultdb.Stmt) faultdb.Fault {
	return faultdb.Matching(pgsql.Register, 1, f)
}

func TestRegisterTrust_CallerRollbackLeavesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, variants[0])
	fliptest.AddSlots(t, b.db, "Trust_001")
	before := snapshot(t, b.ctx, b.db)
	tx, err := sqlx.NewDb(b.db.DB, "postgres").BeginTxx(b.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.reg.RegisterTrust(b.ctx, tx, flip.TrustParams{Name: "Rolled", Code: "RB"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, b.ctx, b.db); after != before {
		t.Errorf("rollback left %+v, want %+v", after, before)
	}
}

func TestRegisterTrust_AcceptsTxConnAndSqlxTx(t *testing.T) {
	t.Parallel()
	b := setup(t, variants[0])
	fliptest.AddSlots(t, b.db, "Trust_001..Trust_010")

	sqlTx, _ := b.db.BeginTx(b.ctx, nil)
	if _, err := b.reg.RegisterTrust(b.ctx, sqlTx, flip.TrustParams{Name: "Via sql.Tx", Code: "T1"}); err != nil {
		t.Fatalf("*sql.Tx: %v", err)
	}
	must(t, sqlTx.Commit())

	sqlxTx, _ := sqlx.NewDb(b.db.DB, "postgres").BeginTxx(b.ctx, nil)
	if _, err := b.reg.RegisterTrust(b.ctx, sqlxTx, flip.TrustParams{Name: "Via sqlx.Tx", Code: "T2"}); err != nil {
		t.Fatalf("*sqlx.Tx: %v", err)
	}
	must(t, sqlxTx.Commit())

	conn, err := b.db.Conn(b.ctx)
	must(t, err)
	defer conn.Close()
	// A connection inside a transaction the caller began by hand: nothing
	// is committed until the caller says so.
	_, err = conn.ExecContext(b.ctx, `BEGIN`)
	must(t, err)
	if _, err := b.reg.RegisterTrust(b.ctx, conn, flip.TrustParams{Name: "Via sql.Conn in tx", Code: "T3"}); err != nil {
		t.Fatalf("*sql.Conn in a transaction: %v", err)
	}
	_, err = conn.ExecContext(b.ctx, `ROLLBACK`)
	must(t, err)
	if _, err := store.TrustByName(b.ctx, b.db, "Via sql.Conn in tx"); !errors.Is(err, store.ErrTrustNotFound) {
		t.Errorf("rolled-back registration on *sql.Conn is visible: %v", err)
	}
	// A connection in autocommit mode: RegisterTrust never begins or
	// commits a transaction of its own, so it refuses, writing nothing.
	before := snapshot(t, b.ctx, b.db)
	if _, err := b.reg.RegisterTrust(b.ctx, conn, flip.TrustParams{Name: "Via sql.Conn autocommit", Code: "T4"}); !errors.Is(err, flip.ErrNotInTransaction) {
		t.Fatalf("*sql.Conn in autocommit: err = %v, want ErrNotInTransaction", err)
	}
	if after := snapshot(t, b.ctx, b.db); after != before {
		t.Errorf("a refused autocommit registration wrote %+v (before %+v)", after, before)
	}
	// The connection is still in autocommit mode: a statement's
	// transaction starts with the statement.
	var autocommit bool
	must(t, conn.QueryRowContext(b.ctx, `SELECT now() = statement_timestamp()`).Scan(&autocommit))
	if !autocommit {
		t.Error("a refused registration left the autocommit connection inside a transaction")
	}
	// RegisterTrustDB owns a transaction on the same connection.
	if _, err := b.reg.RegisterTrustDB(b.ctx, conn, flip.TrustParams{Name: "Via sql.Conn autocommit", Code: "T4"}); err != nil {
		t.Fatalf("RegisterTrustDB on *sql.Conn: %v", err)
	}

	// The convenience that owns its transaction.
	if _, err := b.reg.RegisterTrustDB(b.ctx, b.db, flip.TrustParams{Name: "Via RegisterTrustDB", Code: "T6"}); err != nil {
		t.Fatalf("RegisterTrustDB: %v", err)
	}
	c := snapshot(t, b.ctx, b.db)
	if c.trusts != 4 {
		t.Errorf("%d trusts, want 4", c.trusts)
	}
	checkInvariants(t, b.ctx, b.db)
}

func TestRegisterTrust_RefusesConnectionPool(t *testing.T) {
	t.Parallel()
	b := setup(t, variants[0])
	fliptest.AddSlots(t, b.db, "Trust_001")
	for name, pool := range map[string]flip.DBTX{"*sqlx.DB": sqlx.NewDb(b.db.DB, "postgres"), "*sql.DB": b.db.DB} {
		_, err := b.reg.RegisterTrust(b.ctx, pool, flip.TrustParams{Name: "Pool", Code: "P"})
		if e := isOnly(err, flip.ErrNotInTransaction, flip.ErrTrustRegistration); e != nil {
			t.Errorf("%s: %v", name, e)
		}
	}
	if c := snapshot(t, b.ctx, b.db); c.trusts != 0 {
		t.Errorf("a pool registration wrote %d trusts", c.trusts)
	}
}

func TestRegisterTrust_ClaimsLowestNumberThenName(t *testing.T) {
	t.Parallel()
	b := setup(t, variants[1])
	fliptest.AddSlots(t, b.db, "Unnumbered_b", "Trust_10", "Unnumbered_a", "Kit_2", "Trust_2", "Trust_007")
	var got []string
	for i := range 6 {
		res := b.mustRegister(t, flip.TrustParams{Name: uuid.NewString(), Code: string(rune('A' + i))})
		got = append(got, res.KitSlot.Name)
	}
	want := []string{"Kit_2", "Trust_2", "Trust_007", "Trust_10", "Unnumbered_a", "Unnumbered_b"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("claim order %v, want %v", got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// At REPEATABLE READ the duplicate check reads an old snapshot; flip's
// unique indexes still refuse the second registration of a name.
func TestRegisterTrust_RepeatableReadDuplicateIsCaughtByTheIndex(t *testing.T) {
	t.Parallel()
	b := setup(t, variants[0])
	fliptest.AddSlots(t, b.db, "Trust_001..Trust_002")
	rr := &sql.TxOptions{Isolation: sql.LevelRepeatableRead}
	first, err := b.db.BeginTx(b.ctx, rr)
	must(t, err)
	defer first.Rollback() //nolint:errcheck // no-op after Commit
	second, err := b.db.BeginTx(b.ctx, rr)
	must(t, err)
	defer second.Rollback() //nolint:errcheck // test cleanup
	var one int
	must(t, second.QueryRowContext(b.ctx, `SELECT 1`).Scan(&one)) // take the old snapshot now
	if _, err := b.reg.RegisterTrust(b.ctx, first, flip.TrustParams{Name: "Snapshot", Code: "S1"}); err != nil {
		t.Fatal(err)
	}
	must(t, first.Commit())
	_, err = b.reg.RegisterTrust(b.ctx, second, flip.TrustParams{Name: "Snapshot", Code: "S2"})
	var dup *flip.DuplicateTrustError
	if !errors.As(err, &dup) || dup.Field != "name" || !errors.Is(err, flip.ErrTrustRegistration) {
		t.Fatalf("second registration at REPEATABLE READ: %v", err)
	}
	if _, err := second.ExecContext(b.ctx, `SELECT 1`); err != nil {
		t.Errorf("transaction unusable after the refused registration: %v", err)
	}
}
