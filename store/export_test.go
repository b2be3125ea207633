package store

// Internals the store's tests check directly.
var (
	Migrations     = migrations
	AppliedVersion = appliedVersion
	SlotNumber     = slotNumber
	FreeSlots      = freeSlots
)

const (
	MigrationTable    = migrationTable
	UnnumberedSlot    = unnumberedSlot
	MaxSlotNameLength = maxSlotNameLength
)
