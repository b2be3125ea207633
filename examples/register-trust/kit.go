package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

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

// hubSecretVars are those of hubSharedVars whose values are secrets: the
// hub-wide payload key. They go only into a record that already holds the
// trust's own keys (registered, rotated), which the README tells people to
// treat as a secret; every other record (existing, revoked) is safe to log,
// so it leaves them out.
var hubSecretVars = []string{"AES_KEY_BASE64"}

// hubShared returns those of hubSharedVars that getenv has a value for,
// hubSecretVars only when withSecrets. A variable set to "" counts as unset
// and is left out: a pipeline that exports every name and fills in only
// some must not hand a trust an empty registry or port, which its kit
// would use in place of its own default.
func hubShared(getenv func(string) string, withSecrets bool) map[string]string {
	shared := make(map[string]string) // never nil: the record always has an object
	for _, name := range hubSharedVars {
		if !withSecrets && slices.Contains(hubSecretVars, name) {
			continue
		}
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
	Status                  string            `json:"status"` // "registered", "existing", "revoked" or "rotated"
	TrustID                 string            `json:"trust_id"`
	TrustName               string            `json:"trust_name"`
	TrustAPIKey             string            `json:"trust_api_key,omitempty"`
	TrustInternalServiceKey string            `json:"trust_internal_service_key,omitempty"`
	TrustAESKey             string            `json:"trust_aes_key,omitempty"`
	TrustAESKid             string            `json:"trust_aes_kid,omitempty"`
	FLKitSlot               *string           `json:"fl_kit_slot"`
	FLKitSlotNumber         *int              `json:"fl_kit_slot_number"`
	HubShared               map[string]string `json:"hub_shared"`
	// Drift says how an existing trust differs from the run's --code or
	// --region; absent when it does not.
	Drift *drift `json:"drift,omitempty"`
}

// drift is how an existing trust differs from what a run asked for, so
// that the record says it and a pipeline can act on it, not only a log
// line. Only what differs is present.
type drift struct {
	Code   *driftValue `json:"code,omitempty"`
	Region *driftValue `json:"region,omitempty"`
}

// driftValue is one field's requested and stored values.
type driftValue struct {
	Requested string  `json:"requested"`
	Existing  *string `json:"existing"` // null: the trust has none
}

// driftOf compares the existing trust t with what the run asked for. The
// code compares as registration compares codes, without regard to case;
// the region only when --region was given, exactly.
func driftOf(t flip.Trust, asked flip.TrustParams) *drift {
	var d drift
	value := func(requested, existing string) *driftValue {
		v := &driftValue{Requested: requested}
		if existing != "" {
			v.Existing = &existing
		}
		return v
	}
	if asked.Code != "" && !strings.EqualFold(strings.TrimSpace(t.Code), asked.Code) {
		d.Code = value(asked.Code, t.Code)
	}
	if asked.Region != "" && asked.Region != t.Region {
		d.Region = value(asked.Region, t.Region)
	}
	if d == (drift{}) {
		return nil
	}
	return &d
}

// outcome is what a run did or, under --plan, would do: the command turns
// it into a record, or a plan. For an existing trust res holds the trust
// and its slot but no keys.
type outcome struct {
	status string // "registered", "existing", "revoked" or "rotated"
	res    flip.RegistrationResult
	// keyHash is an existing trust's stored api_key_hash, "" when it
	// holds no key (status "revoked").
	keyHash string
	drift   *drift // an existing trust's differences from the request
}

// Why the command refuses to pass an existing trust on as healthy.
var (
	errTrustRevoked = errors.New("the trust is registered but revoked")
	errCodeDrift    = errors.New("the trust is registered with another code")
)

// refusal returns why the run must fail although it found the trust: it
// is revoked (no key authenticates it, so a kit of it cannot work) or its
// code is not the one asked for (the code names its kit files). A region
// that differs is only reported (drift), since nothing is named by it.
func (o outcome) refusal() error {
	t := o.res.Trust
	var errs []error
	if o.status == "revoked" {
		errs = append(errs, fmt.Errorf("%w: trust %q (%s) holds no API key, so no kit of it can authenticate; re-key it with register-trust --name %q --rotate",
			errTrustRevoked, t.Name, t.ID, t.Name))
	}
	if d := o.drift; d != nil && d.Code != nil {
		has := "no code"
		if d.Code.Existing != nil {
			has = fmt.Sprintf("code %q", *d.Code.Existing)
		}
		errs = append(errs, fmt.Errorf("%w: trust %q has %s, not %q; the code names its kit files: correct --code, or the trust's code in the hub",
			errCodeDrift, t.Name, has, d.Code.Requested))
	}
	return errors.Join(errs...)
}

// issuesKeys says whether o's record carries secrets: a registration's or
// a rotation's does, a skip record never.
func (o outcome) issuesKeys() bool { return o.status == "registered" || o.status == "rotated" }

// kitRecord builds the record of o. Only a registered or rotated trust
// gets secrets (its keys, hub_shared's AES_KEY_BASE64); with aesKey it
// also gets a new payload key, minted here and kept nowhere else. The skip
// record of an existing trust is metadata by construction: its keys are
// empty, no AES key is minted for it, and hub_shared leaves out the
// hub-wide key.
func kitRecord(o outcome, aesKey bool, getenv func(string) string) (record, error) {
	t, slot := o.res.Trust, o.res.KitSlot
	keyed := o.issuesKeys()
	rec := record{Status: o.status, TrustID: t.ID.String(), TrustName: t.Name, HubShared: hubShared(getenv, keyed), Drift: o.drift}
	if slot.Name != "" {
		name, n := slot.Name, slot.Number
		rec.FLKitSlot, rec.FLKitSlotNumber = &name, &n
	}
	if !keyed {
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
