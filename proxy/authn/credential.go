package authn

import (
	"log/slog"
	"strconv"

	"github.com/authgate/authgate/proxy/config"
)

// redacted replaces a credential's value wherever it would be printed.
const redacted = "[REDACTED]"

// Credential is a credential taken from a request, not yet verified. Its
// printed forms (String, GoString, LogValue) never show Value.
type Credential struct {
	// Value is the raw token or API key. Never log it.
	Value string
	// Source is where it was found.
	Source config.CredentialSource
}

// String describes the credential without its value.
func (c Credential) String() string {
	return "credential{source=" + sourceLabel(c.Source) + " value=" + redacted + " len=" + strconv.Itoa(len(c.Value)) + "}"
}

// GoString is String, so %#v does not print the value either.
func (c Credential) GoString() string { return c.String() }

// LogValue describes the credential for slog without its value.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("source", sourceLabel(c.Source)),
		slog.String("value", redacted),
		slog.Int("len", len(c.Value)),
	)
}

func sourceLabel(s config.CredentialSource) string {
	if s.Name == "" {
		return s.Type
	}
	return s.Type + ":" + s.Name
}
