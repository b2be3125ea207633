package flip

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip/internal/dbexec"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// DBTX is the part of a database handle that flip runs its statements on.
// *sql.Tx, *sqlx.Tx and *sql.Conn satisfy it. A connection pool (*sql.DB,
// *sqlx.DB) satisfies it too, but RegisterTrust refuses one: its statements
// could land on different connections and outside any transaction.
type DBTX interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DBTX and dbexec.SQL, the handle the core's database/sql adapter takes,
// are one method set declared twice (dbexec cannot import flip); these
// stop the build if they drift apart.
var (
	_ dbexec.SQL = DBTX(nil)
	_ DBTX       = dbexec.SQL(nil)
)

// TxBeginner opens transactions: *sql.DB, *sqlx.DB and *sql.Conn have it.
// It is what RegisterTrustDB and a seeding run that owns its transactions
// take.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// SlotStore hands out FL kit slots from the pool. store.New() is the one
// to use: a Registry given it claims the slot within its registration
// statement. Another implementation is called after the trust is written,
// in the same transaction.
type SlotStore interface {
	// ClaimSlot assigns the lowest-numbered free slot (ties by name) to
	// trustID at the given time and returns it, skipping slots that
	// concurrent transactions hold. It returns an error wrapping
	// ErrNoFreeKitSlot when none is free.
	ClaimSlot(ctx context.Context, tx DBTX, trustID uuid.UUID, at time.Time) (KitSlot, error)
}

// Registry registers trusts. It holds no state of its own besides its
// collaborators and is safe for concurrent use; create one at start-up.
type Registry struct {
	slots  SlotStore      // nil: claimed within pgsql.Register
	source SlotNameSource // nil: the pool is not grown on a miss
	minter KeyMinter
	now    func() time.Time
	logger *slog.Logger
}

// Option configures a Registry.
type Option func(*Registry)

// WithKeyMinter replaces the default RandomKeyMinter (PrefixedKeys from
// crypto/rand), e.g. with RandomKeyMinter{Format: ReferenceKeys}.
func WithKeyMinter(m KeyMinter) Option { return func(r *Registry) { r.minter = m } }

// WithClock sets the source of created_at, assigned_at and audit_date
// (default time.Now). Times are stored in UTC at microsecond precision.
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// WithLogger sets where the registry logs registrations (default: discard).
// No key, plaintext or hashed, is ever logged.
func WithLogger(l *slog.Logger) Option { return func(r *Registry) { r.logger = l } }

// NewRegistry returns a Registry that claims kit slots from slots:
// store.New(), flip's PostgreSQL pool.
func NewRegistry(slots SlotStore, opts ...Option) *Registry {
	r := &Registry{
		slots:  slots,
		minter: RandomKeyMinter{},
		now:    time.Now,
		logger: slog.New(slog.DiscardHandler),
	}
	if _, builtin := slots.(pgsql.Builtin); builtin {
		r.slots = nil
	}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// RegisterTrust registers a new trust inside the caller's open
// transaction tx and never begins, commits or rolls back a transaction:
// the registration becomes visible when the caller commits, and
// disappears if the caller rolls back. tx is a *sql.Tx, a *sqlx.Tx, or a
// *sql.Conn on which the caller has begun a transaction; a connection pool
// or a connection in autocommit mode is refused with ErrNotInTransaction
// before anything is written (use RegisterTrustDB there).
//
// It puts p in canonical form and validates it before any statement is
// sent (see TrustParams.Normalize); serialises registrations of the same
// name or code so exactly one of them wins; refuses a trust whose name or
// code has the same canonical form as an existing one; mints the trust API
// key and the internal-service key; stores the trust with only HashAPIKey
// of the API key; claims the lowest-numbered free kit slot; and writes a
// REGISTERED row to trusts_audit naming p.AuditUserID. The two plaintext
// keys are returned here and nowhere else.
//
// On any error tx is left exactly as it was before the call, and still
// usable: the work runs under a savepoint that is rolled back, so a caller
// that commits anyway persists nothing from the failed call. Two cases are
// different, and neither leaves half a registration committable: if ctx
// ends while a statement runs, database/sql rolls the whole transaction
// back (the error then matches ctx's error, context.Canceled or
// context.DeadlineExceeded, and the caller's Commit fails); and if the
// savepoint cannot be rolled back while the transaction lives on, the
// transaction is aborted on purpose and the error also matches
// ErrRollbackRequired.
//
// Every error answers errors.Is(err, ErrTrustRegistration); see errors.go
// for the specific ones and the HTTP status each maps to. Errors that say
// "try again" rather than "no" (a deadlock, a serialization failure, a
// lock or statement timeout, a pool whose free slots are all being
// claimed at this moment) also match ErrRetryable: roll back and run the
// transaction again.
//
// Run it at READ COMMITTED (PostgreSQL's default): at REPEATABLE READ or
// above, the duplicate check sees the snapshot taken at the transaction's
// first statement, so only a unique index can catch a concurrent duplicate:
// flip's schema has them where the data allows (the second registration
// still gets ErrDuplicateTrust), the hub's bare schema does not. A slot
// claimed by a transaction that committed after that snapshot surfaces
// there as a serialization failure (SQLSTATE 40001), an ErrRetryable.
func (r *Registry) RegisterTrust(ctx context.Context, tx DBTX, p TrustParams) (RegistrationResult, error) {
	ex, err := txExecutor(tx, ErrTrustRegistration)
	if err != nil {
		return RegistrationResult{}, err
	}
	return r.registerTrust(ctx, ex, p)
}

// registerTrust is RegisterTrust on the caller's transaction ex, whatever
// its driver: database/sql's comes through RegisterTrust, pgx's through
// internal/bridge. A nil ex is refused after p is validated.
func (r *Registry) registerTrust(ctx context.Context, ex dbexec.Executor, p TrustParams) (RegistrationResult, error) {
	p, err := p.Normalize()
	if err != nil {
		return RegistrationResult{}, err
	}
	if ex == nil {
		return RegistrationResult{}, errNilTx(ErrTrustRegistration)
	}
	return r.run(ctx, ex, p, r.registerUnderSavepoint)
}

// txExecutor adapts the caller's database/sql transaction, refusing a
// connection pool before anything is sent; a nil tx gives a nil Executor,
// which the operation refuses in its turn.
func txExecutor(tx DBTX, base error) (dbexec.Executor, error) {
	if tx == nil {
		return nil, nil
	}
	if _, isPool := tx.(interface{ Driver() driver.Driver }); isPool {
		return nil, fmt.Errorf("%w: %w: a connection pool is not a transaction", base, ErrNotInTransaction)
	}
	return dbexec.FromSQL(tx), nil
}

// errNilTx is the error of an operation given no transaction at all.
func errNilTx(base error) error { return fmt.Errorf("%w: %w: tx is nil", base, ErrNotInTransaction) }

// run mints the keys, registers normalised p on tx with register, and
// logs the outcome; the keys go into the result only on success.
func (r *Registry) run(ctx context.Context, tx dbexec.Executor, p TrustParams,
	register func(context.Context, dbexec.Executor, TrustParams, string) (RegistrationResult, error)) (RegistrationResult, error) {
	// Keys first: minting needs no database, and a failing minter must not
	// cost a round trip or hold a lock.
	apiKey, serviceKey, err := r.mintKeys(ctx, ErrTrustRegistration)
	if err != nil {
		return RegistrationResult{}, err
	}
	res, err := register(ctx, tx, p, apiKey)
	if err != nil {
		r.logger.LogAttrs(ctx, logLevel(ctx, err), "trust registration refused",
			slog.String("trust_name", p.Name), slog.String("trust_code", p.Code), slog.Any("error", err))
		return RegistrationResult{}, err
	}
	res.APIKey, res.InternalServiceKey = NewSecret(apiKey), NewSecret(serviceKey)
	r.logger.LogAttrs(ctx, slog.LevelInfo, "trust registered",
		slog.String("trust_id", res.Trust.ID.String()), slog.String("trust_name", res.Trust.Name),
		slog.String("trust_code", res.Trust.Code), slog.String("fl_kit_slot", res.KitSlot.Name))
	return res, nil
}

// mintKeys mints a trust API key and an internal-service key; a failure
// is wrapped in base.
func (r *Registry) mintKeys(ctx context.Context, base error) (apiKey, serviceKey string, err error) {
	if apiKey, err = r.minter.MintKey(TrustAPIKey); err != nil {
		return "", "", opError(ctx, base, "mint trust API key", err)
	}
	if serviceKey, err = r.minter.MintKey(InternalServiceKey); err != nil {
		return "", "", opError(ctx, base, "mint internal-service key", err)
	}
	return apiKey, serviceKey, nil
}

// logLevel is the level a refused operation is logged at.
func logLevel(ctx context.Context, err error) slog.Level {
	switch {
	case errors.Is(err, ErrDuplicateTrust), errors.Is(err, ErrNoFreeKitSlot), errors.Is(err, ErrTrustNotFound), errors.Is(err, ErrTrustDeletionBlocked):
		return slog.LevelInfo // an answer, not a fault
	case errors.Is(err, ErrRetryable), ctx.Err() != nil:
		return slog.LevelWarn // passes if tried again
	}
	return slog.LevelError // the database or a collaborator failed
}

// registerUnderSavepoint runs register under a savepoint of the caller's
// transaction (see underSavepoint).
func (r *Registry) registerUnderSavepoint(ctx context.Context, tx dbexec.Executor, p TrustParams, apiKey string) (res RegistrationResult, err error) {
	err = underSavepoint(ctx, tx, ErrTrustRegistration, func() error {
		res, err = r.register(ctx, tx, p, apiKey)
		return err
	})
	return res, err
}

// underSavepoint runs work inside a savepoint of the caller's transaction
// and, on any error, rolls back to it (see undo), so that the caller's
// transaction is as it was. Errors of its own are wrapped in base.
func underSavepoint(ctx context.Context, tx dbexec.Executor, base error, work func() error) error {
	_, err := tx.Exec(ctx, pgsql.Savepoint)
	if pgsql.SQLState(err) == "25P01" { // no_active_sql_transaction
		return fmt.Errorf("%w: %w: the connection has no open transaction (begin one first): %w", base, ErrNotInTransaction, err)
	}
	if err != nil {
		return opError(ctx, base, "open savepoint", err)
	}
	err = work()
	if err == nil {
		if _, err = tx.Exec(ctx, pgsql.ReleaseSavepoint); err == nil {
			return nil
		}
		err = opError(ctx, base, "release savepoint", err)
	}
	return undo(ctx, tx, err)
}

// register sends the registration's statements: the duplicate check and
// the writes in one statement (pgsql.Register), and, with a SlotStore of
// the caller's own, its claim. Where flip's unique indexes on the
// canonical name and code exist, they stop a concurrent duplicate and
// nothing else is sent. Elsewhere (the hub's bare schema, or one whose
// legacy rows kept the indexes from being unique) the first statement
// writes nothing, and the identity lock is taken before it is sent again,
// so that its snapshot sees every rival that committed meanwhile. A
// duplicate has written nothing; any other error may leave writes for the
// caller to undo (the savepoint, or RegisterTrustDB's rollback).
func (r *Registry) register(ctx context.Context, tx dbexec.Executor, p TrustParams, apiKey string) (RegistrationResult, error) {
	now := r.now().UTC().Truncate(time.Microsecond)
	trust := Trust{ID: uuid.New(), Name: p.Name, Code: p.Code, Region: p.Region, CreatedAt: now}
	hash, nameKey := HashAPIKey(apiKey), pgsql.FoldName(p.Name)
	out, err := r.send(ctx, tx, trust, nameKey, hash, p.AuditUserID, false)
	if err == nil && out.needsLock && !out.dup.id.Valid {
		if _, err := tx.Exec(ctx, pgsql.LockTrustIdentity, nameKey, p.Code); err != nil {
			return RegistrationResult{}, registrationError(ctx, "lock trust name and code", err)
		}
		out, err = r.send(ctx, tx, trust, nameKey, hash, p.AuditUserID, true)
	}
	switch {
	case err != nil:
		return RegistrationResult{}, registrationError(ctx, "register trust", insertError(err, p))
	case out.dup.id.Valid:
		return RegistrationResult{}, out.dup.duplicateError(p)
	case r.slots != nil:
		slot, err := r.claimSlot(ctx, tx, trust.ID, now)
		if err != nil {
			return RegistrationResult{}, registrationError(ctx, "claim kit slot", err)
		}
		return RegistrationResult{Trust: trust, KitSlot: slot}, nil
	case !out.slotName.Valid && out.busy.Bool:
		return RegistrationResult{}, ErrKitSlotsBusy
	case !out.slotName.Valid && r.source != nil:
		slot, added, err := r.growPool(ctx, tx, trust.ID, now)
		if err != nil {
			return RegistrationResult{}, err
		}
		return RegistrationResult{Trust: trust, KitSlot: slot, AddedKitSlots: added}, nil
	case !out.slotName.Valid:
		return RegistrationResult{}, ErrNoFreeKitSlot
	}
	slot := KitSlot{Name: out.slotName.String, Number: int(out.slotNumber.Int64), AssignedTo: trust.ID, AssignedAt: now}
	return RegistrationResult{Trust: trust, KitSlot: slot}, nil
}

// claimSlot claims the trust's kit slot from a SlotStore of the caller's
// own. SlotStore is public and takes a DBTX, so it gets back the handle
// the operation was given: the claim still runs in the caller's
// transaction, after the trust is written.
func (r *Registry) claimSlot(ctx context.Context, tx dbexec.Executor, trustID uuid.UUID, at time.Time) (KitSlot, error) {
	db, ok := dbexec.SQLOf(tx)
	if !ok {
		return KitSlot{}, errors.New("a SlotStore of the caller's own needs a database/sql transaction")
	}
	return r.slots.ClaimSlot(ctx, db, trustID, at)
}

// registerOutcome is the row pgsql.Register (or RegisterWithoutSlot)
// returns.
type registerOutcome struct {
	dup        nullTrust
	needsLock  bool
	slotName   sql.NullString
	slotNumber sql.NullInt64
	busy       sql.NullBool
}

// send runs the registration statement once for t, whose name's key
// (pgsql.FoldName) is nameKey; locked says the identity lock is held.
func (r *Registry) send(ctx context.Context, tx dbexec.Executor, t Trust, nameKey, apiKeyHash string, auditUser uuid.UUID, locked bool) (registerOutcome, error) {
	var out registerOutcome
	// One array for both statements, sliced: Scan's arguments escape
	// through the Row interface, and an append would allocate again.
	stmt := pgsql.Register
	dest := [...]any{&out.dup.id, &out.dup.name, &out.dup.code, &out.dup.region, &out.dup.createdAt, &out.dup.sameName, &out.needsLock,
		&out.slotName, &out.slotNumber, &out.busy}
	n := len(dest)
	if r.slots != nil {
		stmt, n = pgsql.RegisterWithoutSlot, n-3 // without the three slot columns
	}
	err := tx.QueryRow(ctx, stmt, t.Name, t.Code, t.ID, t.Region, apiKeyHash, t.CreatedAt,
		uuid.New(), nullUUID(auditUser), locked, nameKey).Scan(dest[:n]...)
	return out, err
}

// RegisterTrustDB is RegisterTrust in a transaction of its own on db (a
// *sql.DB, *sqlx.DB or *sql.Conn): it begins, registers, and commits, or
// rolls back on any error. Use it where no caller transaction exists, as
// in a deploy command. The transaction being its own, a failure is undone
// by rolling it back, so it sends no savepoint: two statements fewer than
// RegisterTrust. An error that matches ErrRetryable has left nothing
// behind; calling again is safe.
func (r *Registry) RegisterTrustDB(ctx context.Context, db TxBeginner, p TrustParams) (RegistrationResult, error) {
	return r.registerTrustDB(ctx, dbexec.BeginnerFromSQL(db), p)
}

// registerTrustDB is RegisterTrustDB with transactions from db, whatever
// its driver.
func (r *Registry) registerTrustDB(ctx context.Context, db dbexec.Beginner, p TrustParams) (RegistrationResult, error) {
	p, err := p.Normalize()
	if err != nil {
		return RegistrationResult{}, err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return RegistrationResult{}, registrationError(ctx, "begin transaction", err)
	}
	committed := false
	defer func() {
		if !committed { // undoes a failed registration, or one that panicked
			// Not ctx, which may be what ended: pgx would then drop the
			// connection instead of sending ROLLBACK.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	res, err := r.run(ctx, tx, p, r.register)
	if err != nil {
		return RegistrationResult{}, err
	}
	committed = true // a failed COMMIT has ended the transaction too
	if err := tx.Commit(ctx); err != nil {
		return RegistrationResult{}, registrationError(ctx, "commit", err)
	}
	return res, nil
}
