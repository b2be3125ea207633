package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/londonaicentre/flip"
)

// envSlotNames names the environment variable holding the slot-name
// source's JSON list, as on the reference hub (development setups).
const envSlotNames = "FL_KIT_SLOT_NAMES"

// slotNameSource is where a registration that finds the pool empty gets
// names to grow it from (flip.WithSlotNameSource): --slot-names-file,
// else $FL_KIT_SLOT_NAMES, else nowhere (nil), in which case an empty pool
// is an error as before. An empty variable counts as unset, as in
// hub_shared.
func slotNameSource(file string, getenv func(string) string) flip.SlotNameSource {
	switch {
	case file != "":
		return flip.SlotNamesFromFile(file)
	case getenv(envSlotNames) != "":
		return getenvSlotNames(getenv)
	}
	return nil
}

// getenvSlotNames is flip.SlotNamesFromEnv(envSlotNames) read through the
// command's getenv instead of os.Getenv, so that the command's whole
// environment is the one run is given (tests give it a map).
type getenvSlotNames func(string) string

// SlotNames implements flip.SlotNameSource, reading the variable anew at
// each miss as the library's sources do.
func (getenv getenvSlotNames) SlotNames(context.Context) ([]string, error) {
	v := getenv(envSlotNames)
	if v == "" {
		return nil, fmt.Errorf("%s is not set", envSlotNames)
	}
	var names []string
	if err := json.Unmarshal([]byte(v), &names); err != nil {
		return nil, fmt.Errorf("not a JSON list of strings: %w", err)
	}
	return names, nil
}

// String names the source in the registry's log lines and errors.
func (getenvSlotNames) String() string { return "environment variable " + envSlotNames }
