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

// TxBeginner opens transactions: *sql.DB, *sqlx.DB and *sql.Conn satisfy it.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// Savepoint is a point inside the caller's transaction that a failed
// registration returns to, leaving earlier work in the transaction intact.
type Savepoint interface {
	// Release keeps the work done since the savepoint.
	Release(ctx context.Context) error
	// Rollback discards the work done since the savepoint and leaves the
	// transaction usable. When it cannot, it must make sure the transaction
	// can no longer commit (abort it) and return an error wrapping
	// ErrRollbackRequired: half a registration must never be committable.
	Rollback(ctx context.Context) error
}

// TrustStore persists trusts and their audit trail. Every method runs on tx
// and nowhere else; none commits. store.Store implements it for PostgreSQL.
type TrustStore interface {
	// Savepoint marks tx so that a failed registration can be undone. When
	// tx is not in a transaction (a *sql.Conn in autocommit mode) it returns
	// an error wrapping ErrNotInTransaction and writes nothing; it never
	// begins a transaction itself.
	Savepoint(ctx context.Context, tx DBTX) (Savepoint, error)
	// LockTrustIdentity makes concurrent registrations of the same name, or
	// of the same code compared case-insensitively, wait for each other
	// until tx ends, even where no unique index exists.
	LockTrustIdentity(ctx context.Context, tx DBTX, name, code string) error
	// FindDuplicate returns the trust named name, else one whose code equals
	// code case-insensitively, with field "name" or "code"; nil when none.
	FindDuplicate(ctx context.Context, tx DBTX, name, code string) (existing *Trust, field string, err error)
	// InsertTrust stores t with apiKeyHash. A unique violation is returned as
	// a *DuplicateTrustError.
	InsertTrust(ctx context.Context, tx DBTX, t Trust, apiKeyHash string) error
	// InsertAudit stores one trusts_audit row.
	InsertAudit(ctx context.Context, tx DBTX, a TrustAudit) error
}

// SlotStore hands out FL kit slots from the pool.
type SlotStore interface {
	// ClaimSlot assigns the lowest-numbered free slot (ties by name) to
	// trustID at the given time and returns it, skipping slots that
	// concurrent transactions hold. It returns an error wrapping
	// ErrNoFreeKitSlot when none is free.
	ClaimSlot(ctx context.Context, tx DBTX, trustID uuid.UUID, at time.Time) (KitSlot, error)
}

// Store is everything a Registry needs from persistence.
type Store interface {
	TrustStore
	SlotStore
}

// Registry registers trusts. It holds no state of its own besides its
// collaborators and is safe for concurrent use; create one at start-up.
type Registry struct {
	trusts TrustStore
	slots  SlotStore
	minter KeyMinter
	now    func() time.Time
	logger *slog.Logger
}

// Option configures a Registry.
type Option func(*Registry)

// WithKeyMinter replaces the default RandomKeyMinter (PrefixedKeys from
// crypto/rand), e.g. with RandomKeyMinter{Format: ReferenceKeys}.
func WithKeyMinter(m KeyMinter) Option { return func(r *Registry) { r.minter = m } }

// WithSlotStore claims kit slots through s instead of the Store given to
// NewRegistry.
func WithSlotStore(s SlotStore) Option { return func(r *Registry) { r.slots = s } }

// WithClock sets the source of created_at, assigned_at and audit_date
// (default time.Now). Times are stored in UTC at microsecond precision.
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// WithLogger sets where the registry logs registrations (default: discard).
// No key, plaintext or hashed, is ever logged.
func WithLogger(l *slog.Logger) Option { return func(r *Registry) { r.logger = l } }

// NewRegistry returns a Registry that persists through s, usually
// store.New().
func NewRegistry(s Store, opts ...Option) *Registry {
	r := &Registry{
		trusts: s,
		slots:  s,
		minter: RandomKeyMinter{},
		now:    time.Now,
		logger: slog.New(slog.DiscardHandler),
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
	p, err := p.Normalize()
	if err != nil {
		return RegistrationResult{}, err
	}
	if tx == nil {
		return RegistrationResult{}, fmt.Errorf("%w: tx is nil", ErrNotInTransaction)
	}
	if _, isPool := tx.(interface{ Driver() driver.Driver }); isPool {
		return RegistrationResult{}, ErrNotInTransaction
	}
	return r.run(ctx, tx, p, r.registerUnderSavepoint)
}

// run mints the keys, registers normalised p on tx with register, and
// logs the outcome; the keys go into the result only on success.
func (r *Registry) run(ctx context.Context, tx DBTX, p TrustParams,
	register func(context.Context, DBTX, TrustParams, string) (RegistrationResult, error)) (RegistrationResult, error) {
	// Keys first: minting needs no database, and a failing minter must not
	// cost a round trip or hold a lock.
	apiKey, err := r.minter.MintKey(TrustAPIKey)
	if err != nil {
		return RegistrationResult{}, registrationError(ctx, "mint trust API key", err)
	}
	serviceKey, err := r.minter.MintKey(InternalServiceKey)
	if err != nil {
		return RegistrationResult{}, registrationError(ctx, "mint internal-service key", err)
	}
	res, err := register(ctx, tx, p, apiKey)
	if err != nil {
		level := slog.LevelError // the database or a collaborator failed
		switch {
		case errors.Is(err, ErrDuplicateTrust), errors.Is(err, ErrNoFreeKitSlot):
			level = slog.LevelInfo // an answer, not a fault
		case errors.Is(err, ErrRetryable), ctx.Err() != nil:
			level = slog.LevelWarn // passes if tried again
		}
		r.logger.LogAttrs(ctx, level, "trust registration refused",
			slog.String("trust_name", p.Name), slog.String("trust_code", p.Code), slog.Any("error", err))
		return RegistrationResult{}, err
	}
	res.APIKey, res.InternalServiceKey = apiKey, serviceKey
	r.logger.LogAttrs(ctx, slog.LevelInfo, "trust registered",
		slog.String("trust_id", res.Trust.ID.String()), slog.String("trust_name", res.Trust.Name),
		slog.String("trust_code", res.Trust.Code), slog.String("fl_kit_slot", res.KitSlot.Name))
	return res, nil
}

// registerUnderSavepoint runs register inside a savepoint of the caller's
// transaction and, on any error, rolls back to it, so that the caller's
// transaction is as it was.
func (r *Registry) registerUnderSavepoint(ctx context.Context, tx DBTX, p TrustParams, apiKey string) (RegistrationResult, error) {
	sp, err := r.trusts.Savepoint(ctx, tx)
	if err != nil {
		return RegistrationResult{}, registrationError(ctx, "open savepoint", err)
	}
	res, err := r.register(ctx, tx, p, apiKey)
	if err == nil {
		if err = sp.Release(ctx); err == nil {
			return res, nil
		}
		err = registrationError(ctx, "release savepoint", err)
	}
	// Undo with a context of its own: the caller's may be what just
	// expired, and leaving the transaction aborted would break the promise
	// that it stays usable.
	undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if rbErr := sp.Rollback(undoCtx); rbErr != nil {
		err = errors.Join(err, fmt.Errorf("undo the failed registration: %w", rbErr))
	}
	return RegistrationResult{}, err
}

// register runs the registration's statements; the caller owns the savepoint.
func (r *Registry) register(ctx context.Context, tx DBTX, p TrustParams, apiKey string) (RegistrationResult, error) {
	if err := r.trusts.LockTrustIdentity(ctx, tx, p.Name, p.Code); err != nil {
		return RegistrationResult{}, registrationError(ctx, "lock trust name and code", err)
	}
	existing, field, err := r.trusts.FindDuplicate(ctx, tx, p.Name, p.Code)
	if err != nil {
		return RegistrationResult{}, registrationError(ctx, "check for duplicate trust", err)
	}
	if existing != nil {
		return RegistrationResult{}, &DuplicateTrustError{Field: field, Name: p.Name, Code: p.Code, Existing: existing}
	}

	now := r.now().UTC().Truncate(time.Microsecond)
	trust := Trust{ID: uuid.New(), Name: p.Name, Code: p.Code, Region: p.Region, CreatedAt: now}
	if err := r.trusts.InsertTrust(ctx, tx, trust, HashAPIKey(apiKey)); err != nil {
		return RegistrationResult{}, registrationError(ctx, "insert trust", err)
	}
	slot, err := r.slots.ClaimSlot(ctx, tx, trust.ID, now)
	if err != nil {
		return RegistrationResult{}, registrationError(ctx, "claim kit slot", err)
	}
	audit := TrustAudit{
		ID: uuid.New(), TrustID: trust.ID, TrustName: trust.Name, Action: AuditRegistered,
		ModifiedBy: p.AuditUserID, AuditDate: now,
	}
	if err := r.trusts.InsertAudit(ctx, tx, audit); err != nil {
		return RegistrationResult{}, registrationError(ctx, "insert audit row", err)
	}
	return RegistrationResult{Trust: trust, KitSlot: slot}, nil
}

// RegisterTrustDB is RegisterTrust in a transaction of its own on db (a
// *sql.DB, *sqlx.DB or *sql.Conn): it begins, registers, and commits, or
// rolls back on any error. Use it where no caller transaction exists, as
// in a deploy command. The transaction being its own, a failure is undone
// by rolling it back, so it sends no savepoint: two statements fewer than
// RegisterTrust. An error that matches ErrRetryable has left nothing
// behind; calling again is safe.
func (r *Registry) RegisterTrustDB(ctx context.Context, db TxBeginner, p TrustParams) (RegistrationResult, error) {
	p, err := p.Normalize()
	if err != nil {
		return RegistrationResult{}, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return RegistrationResult{}, registrationError(ctx, "begin transaction", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit; undoes a failed registration
	res, err := r.run(ctx, tx, p, r.register)
	if err != nil {
		return RegistrationResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return RegistrationResult{}, registrationError(ctx, "commit", err)
	}
	return res, nil
}
