package push

import (
	"context"

	"github.com/authgate/authgate/internal/pushapi"
)

// Applier is what the client needs from the proxy's configuration loader
// (proxy/reload.Loader implements it). It is owned here, by its consumer.
type Applier interface {
	// Apply loads data as a file reload would: load, validate, build and
	// activate only on success. It returns Applied when the new bundle is
	// active, Stale when its revision is not above the active one (nothing
	// done), Unchanged when it is the active content, and Rejected with the
	// reason when it failed validation or build (the last good
	// configuration stays). err is non-nil only with Rejected.
	//
	// ctx is Run's context: it lives as long as the client, not as long as
	// one stream, so whatever the Applier starts with it (a runtime's key
	// refreshes) outlives a dropped connection.
	Apply(ctx context.Context, data []byte) (Outcome, error)
	// Enforced is what the proxy enforces now: Revision, Hash (config.Hash
	// of the bundle's bytes) and Policies; Source is ignored (the client
	// sets it). ok is false while nothing is loaded.
	Enforced() (ack pushapi.Ack, ok bool)
}

// Outcome is the result of Applier.Apply.
type Outcome int

// Outcomes of Applier.Apply. The zero value is not an outcome, so an
// Applier that forgets to set one is treated as a rejection.
const (
	// Applied: the bundle is active.
	Applied Outcome = iota + 1
	// Unchanged: the bundle is the active content; nothing done.
	Unchanged
	// Stale: the bundle's revision is not above the active one; nothing done.
	Stale
	// Rejected: the bundle failed to load, validate or build; the last good
	// configuration stays.
	Rejected
)

// String is the outcome's metric label.
func (o Outcome) String() string {
	switch o {
	case Applied:
		return outcomeApplied
	case Unchanged:
		return outcomeUnchanged
	case Stale:
		return outcomeStale
	case Rejected:
		return outcomeRejected
	default:
		return "unknown"
	}
}
