package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/londonaicentre/flip"
)

// hubSharedVars are the environment variables copied into every record's
// hub_shared, and the only ones: the reference hub's list, which the kit
// distribution script reads. Anything else in the environment (the
// database URL with its password, cloud credentials) must never reach a
// kit, so the command names what it copies instead of filtering what it
// does not.
var hubSharedVars = []string{
	"AES_KEY_BASE64",
	"CENTRAL_HUB_API_URL",
	"TRUST_API_KEY_HEADER",
	"FL_BACKEND",
	"FLOWER_KIT_DATE",
	"FLARE_KIT_DATE",
	"DOCKER_TAG",
	"DOCKER_REGISTRY",
	"DOCKER_FL_TAG",
	"DOCKER_FL_REGISTRY",
	"NLB_SUBDOMAIN",
	"FL_SERVER_PORT",
}

// hubShared returns those of hubSharedVars that getenv has a value for.
// A variable set to "" counts as unset and is left out: a pipeline that
// exports every name and fills in only some must not hand a trust an
// empty registry or port, which its kit would use in place of its own
// default.
func hubShared(getenv func(string) string) map[string]string {
	shared := make(map[string]string) // never nil: the record always has an object
	for _, name := range hubSharedVars {
		if v := getenv(name); v != "" {
			shared[name] = v
		}
	}
	return shared
}

// record is one element of the JSON array the command prints (or writes
// to --out-file): the reference hub's kit record plus flip's status. Every
// key but the secrets is always present, so that the distribution script
// can index it without checking; a trust that holds no kit slot (a legacy
// row) has null there.
type record struct {
	Status                  string            `json:"status"` // "registered", "existing" or "rotated"
	TrustID                 string            `json:"trust_id"`
	TrustName               string            `json:"trust_name"`
	TrustAPIKey             string            `json:"trust_api_key,omitempty"`
	TrustInternalServiceKey string            `json:"trust_internal_service_key,omitempty"`
	TrustAESKey             string            `json:"trust_aes_key,omitempty"`
	TrustAESKid             string            `json:"trust_aes_kid,omitempty"`
	FLKitSlot               *string           `json:"fl_kit_slot"`
	FLKitSlotNumber         *int              `json:"fl_kit_slot_number"`
	HubShared               map[string]string `json:"hub_shared"`
}

// outcome is what a run did or, under --plan, would do: the command turns
// it into a record, or a plan. For an existing trust res holds the trust
// and its slot but no keys.
type outcome struct {
	status string // "registered", "existing" or "rotated"
	res    flip.RegistrationResult
}

// kitRecord builds the record of o. Only a registered or rotated trust
// gets secrets; with aesKey it also gets a new payload key, minted here
// and kept nowhere else. The skip record of an existing trust is metadata
// by construction: its keys are empty, and no AES key is minted for it.
func kitRecord(o outcome, aesKey bool, getenv func(string) string) (record, error) {
	t, slot := o.res.Trust, o.res.KitSlot
	rec := record{Status: o.status, TrustID: t.ID.String(), TrustName: t.Name, HubShared: hubShared(getenv)}
	if slot.Name != "" {
		name, n := slot.Name, slot.Number
		rec.FLKitSlot, rec.FLKitSlotNumber = &name, &n
	}
	if o.status == "existing" {
		return rec, nil
	}
	rec.TrustAPIKey, rec.TrustInternalServiceKey = o.res.APIKey.Reveal(), o.res.InternalServiceKey.Reveal()
	if aesKey {
		key, err := mintAESKey()
		if err != nil {
			return record{}, err
		}
		rec.TrustAESKey, rec.TrustAESKid = key, aesKid(t)
	}
	return rec, nil
}

// aesKeyBytes is the size of a trust's payload key: AES-256.
const aesKeyBytes = 32

// mintAESKey returns a new per-trust payload key as the reference hub
// encodes it: 32 bytes from crypto/rand in standard, padded base64 (44
// characters).
func mintAESKey() (string, error) {
	b := make([]byte, aesKeyBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("minting the AES payload key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// aesKid names a trust's payload key, so the hub and the trust agree on
// which key a payload was sealed with without sending the key.
func aesKid(t flip.Trust) string { return "trust-" + t.ID.String() }
