package flip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Growing the kit-slot pool on a miss
//
// The reference hub (since its PR #781) keeps the list of kit slot names
// somewhere of its own (an SSM parameter in production, FL_KIT_SLOT_NAMES
// in development) and, when a registration finds the pool empty, adds the
// names the pool lacks and claims again, once. A Registry does the same
// when given WithSlotNameSource.

// SlotNameSource lists the kit slot names the pool should hold, e.g. from
// the hub's configuration store. SlotNamesFromEnv and SlotNamesFromFile read
// a JSON list of strings; the hub plugs in its own (the reference reads the
// SSM parameter /flip/fl_kit_slot_names).
type SlotNameSource interface {
	// SlotNames returns the names. An error (the source is missing,
	// unreadable or malformed) is logged by the Registry and taken as an
	// empty list: the registration then fails with ErrNoFreeKitSlot, whose
	// message says what the source held.
	SlotNames(ctx context.Context) ([]string, error)
}

// WithSlotNameSource makes the Registry, when a registration finds no free
// kit slot, ask src for slot names once, add those the pool lacks (only
// ever adding: nothing is removed or reassigned) and claim again, once,
// all inside the registration's transaction: a failed registration leaves
// no added slot behind. Two registrations growing the pool at once add each
// name once and neither fails for it. Invalid names (blank, control
// characters, over 255 characters) are skipped and logged. It applies to
// the pool of store.New(); a Registry with a SlotStore of its own ignores it.
func WithSlotNameSource(src SlotNameSource) Option { return func(r *Registry) { r.source = src } }

// SlotNamesFromEnv is a SlotNameSource reading a JSON list of names from
// the environment variable variable (the reference hub's is
// FL_KIT_SLOT_NAMES). An unset variable is an error saying so, which the
// Registry logs and takes as no names.
func SlotNamesFromEnv(variable string) SlotNameSource { return envSlotNames(variable) }

// SlotNamesFromFile is a SlotNameSource reading a JSON list of names from
// the file at path, read anew at each miss.
func SlotNamesFromFile(path string) SlotNameSource { return fileSlotNames(path) }

type envSlotNames string

func (e envSlotNames) SlotNames(context.Context) ([]string, error) {
	v, ok := os.LookupEnv(string(e))
	if !ok {
		return nil, fmt.Errorf("%s is not set", string(e))
	}
	return parseSlotNames([]byte(v))
}

func (e envSlotNames) String() string { return "environment variable " + string(e) }

type fileSlotNames string

func (f fileSlotNames) SlotNames(context.Context) ([]string, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, err
	}
	return parseSlotNames(b)
}

func (f fileSlotNames) String() string { return "file " + string(f) }

// errMalformedSlotNames says a source did not hold a JSON list of strings.
var errMalformedSlotNames = errors.New("not a JSON list of strings")

func parseSlotNames(b []byte) ([]string, error) {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformedSlotNames, err)
	}
	return names, nil
}

// describeSource names src for a log line or an error: its String method
// if it has one, else its type.
func describeSource(src SlotNameSource) string {
	if s, ok := src.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", src)
}
