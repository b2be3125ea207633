package pgsql

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Adding kit slots to the pool: store.AddSlots and a Registry growing the
// pool from its slot-name source share these.

// UnnumberedSlot is the slot_number of a slot whose name has no trailing
// _<N>: such slots are handed out after every numbered one.
const UnnumberedSlot = 10000

// MaxSlotNameLength is the longest slot name accepted, in characters.
const MaxSlotNameLength = 255

// ErrInvalidSlotName is store.ErrInvalidSlotName.
var ErrInvalidSlotName = errors.New("invalid kit slot name")

var trailingNumber = regexp.MustCompile(`_(\d+)$`)

// SlotNumber returns the slot_number for a slot name: the trailing _<N>
// (Trust_007 → 7), or UnnumberedSlot when there is none or it does not fit
// in a PostgreSQL integer.
func SlotNumber(name string) int {
	m := trailingNumber.FindStringSubmatch(name)
	if m == nil {
		return UnnumberedSlot
	}
	n, err := strconv.ParseInt(m[1], 10, 32)
	if err != nil {
		return UnnumberedSlot
	}
	return int(n)
}

// CleanSlotName trims raw and refuses what cannot be a slot name: invalid
// UTF-8, blank, longer than MaxSlotNameLength, or with a control character.
func CleanSlotName(raw string) (string, error) {
	name := strings.TrimSpace(raw)
	switch {
	case !utf8.ValidString(name):
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidSlotName)
	case name == "":
		return "", fmt.Errorf("%w: blank", ErrInvalidSlotName)
	case utf8.RuneCountInString(name) > MaxSlotNameLength:
		return "", fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidSlotName, string([]rune(name)[:32])+"…", MaxSlotNameLength)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", fmt.Errorf("%w: %q contains a control character", ErrInvalidSlotName, name)
	}
	return name, nil
}

// SlotRows is AddSlots's parameter for clean names: a JSON array of
// {name, number}. One JSON parameter instead of a driver-specific array
// type keeps it working with every driver and any number of names.
func SlotRows(names []string) string {
	type row struct {
		Name   string `json:"name"`
		Number int    `json:"number"`
	}
	rows := make([]row, len(names))
	for i, n := range names {
		rows[i] = row{n, SlotNumber(n)}
	}
	b, _ := json.Marshal(rows) // strings and ints always marshal
	return string(b)
}

// AddSlots inserts the slots of SlotRows($1) that the pool lacks, in name
// order (so that two transactions adding the same names never deadlock),
// and returns the names it inserted. A name already there, or inserted
// meanwhile by a transaction that commits, is left as it is: ON CONFLICT
// waits for that transaction and then does nothing, no error.
const AddSlots = `INSERT INTO fl_kit_slot (slot_name, slot_number)
SELECT DISTINCT ON (r.name) r.name, r.number FROM pg_catalog.json_to_recordset($1::pg_catalog.json) AS r(name pg_catalog.text, number pg_catalog.int4)
ORDER BY r.name
ON CONFLICT (slot_name) DO NOTHING
RETURNING slot_name`
