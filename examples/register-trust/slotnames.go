package main

// envSlotNames names the environment variable holding the slot-name
// source's JSON list, as on the reference hub (development setups).
const envSlotNames = "FL_KIT_SLOT_NAMES"
