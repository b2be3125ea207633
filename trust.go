package flip

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Trust is a registered NHS trust, as stored in the trust table.
type Trust struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
	// Code is the trust's short code (e.g. "GSTT"); it names the trust's kit
	// files and is unique case-insensitively.
	Code string `json:"code"`
	// Region is "" when none was given (NULL in the database).
	Region    string    `json:"region"`
	CreatedAt time.Time `json:"created_at"`
}

// KitSlot is an FL kit slot from the pool in fl_kit_slot.
type KitSlot struct {
	Name string `json:"fl_kit_slot"`
	// Number is the trailing _<N> of Name (Trust_007 → 7), or 10000 when
	// the name has none; free slots are claimed lowest number first.
	Number int `json:"fl_kit_slot_number"`
	// AssignedTo is the trust holding the slot, uuid.Nil when free.
	AssignedTo uuid.UUID `json:"-"`
	// AssignedAt is when the slot was claimed; zero when free.
	AssignedAt time.Time `json:"-"`
}

// TrustParams is what a caller asks RegisterTrust to register. Name, Code
// and Region are trimmed of surrounding whitespace; Name and Code are
// required. See MaxNameLength for the limits.
type TrustParams struct {
	Name   string
	Code   string
	Region string
	// AuditUserID is the admin's identity-provider id (Cognito sub),
	// recorded in trusts_audit.modified_by_user_id. Leave it uuid.Nil when
	// no person is acting (the deploy command); NULL is recorded.
	AuditUserID uuid.UUID
}

// RegistrationResult is what a successful RegisterTrust (or RotateKeys)
// returns. APIKey and InternalServiceKey are the only copies of those
// secrets anywhere: the database holds just HashAPIKey(APIKey.Reveal()).
// Hand them to the trust and drop them.
//
// To keep them out of logs by accident, each key is a Secret: fmt (every
// verb, also where the result sits in an unexported field of another
// value), log/slog and encoding/json print it redacted, and the keys are
// left out of the result's JSON. Reveal returns the plaintext to use.
type RegistrationResult struct {
	Trust              Trust   `json:"trust"`
	KitSlot            KitSlot `json:"kit_slot"`
	APIKey             Secret  `json:"-"`
	InternalServiceKey Secret  `json:"-"`
	// AddedKitSlots are the slot names a Registry's SlotNameSource added to
	// the pool for this registration (the pool was empty); usually none.
	AddedKitSlots []string `json:"added_fl_kit_slots,omitempty"`
}

const redacted = "[REDACTED]"

// String prints the result with both keys redacted.
func (r RegistrationResult) String() string {
	return fmt.Sprintf("{Trust:%+v KitSlot:%s APIKey:%s InternalServiceKey:%s}", r.Trust, r.KitSlot.Name, redacted, redacted)
}

// GoString keeps %#v from printing the keys.
func (r RegistrationResult) GoString() string { return "flip.RegistrationResult" + r.String() }

// LogValue implements slog.LogValuer with both keys redacted.
func (r RegistrationResult) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("trust_id", r.Trust.ID.String()),
		slog.String("trust_name", r.Trust.Name),
		slog.String("trust_code", r.Trust.Code),
		slog.String("fl_kit_slot", r.KitSlot.Name),
		slog.String("api_key", redacted),
		slog.String("internal_service_key", redacted),
	)
}
