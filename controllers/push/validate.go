package push

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/authgate/authgate/internal/pushapi"
)

// Bounds of an Ack, beyond pushapi.MaxAckBytes.
const (
	// MaxAckPolicies bounds the policies an Ack lists.
	MaxAckPolicies = 256
	// maxPolicyName is "<namespace>/<name>" at their longest.
	maxPolicyName = validation.DNS1123SubdomainMaxLength + 1 + validation.DNS1123SubdomainMaxLength
	// maxPolicyVersion holds any int64 in decimal (a generation).
	maxPolicyVersion = 20
)

// ValidateAck checks an Ack sent by a pod of namespace ns: a bundle hash
// (64 lowercase hex digits), a revision ≥ 0, a known source, and at most
// MaxAckPolicies policies, each named "<ns>/<name>" in the sender's own
// namespace (a bundle holds no other) with a short version.
func ValidateAck(ns string, a pushapi.Ack) error {
	switch {
	case !isHexSHA256(a.Hash):
		return errors.New("hash must be 64 lowercase hex digits")
	case a.Revision < 0:
		return errors.New("revision must not be negative")
	case a.Source != pushapi.SourcePush && a.Source != pushapi.SourceFile:
		return fmt.Errorf("source must be %q or %q", pushapi.SourcePush, pushapi.SourceFile)
	case len(a.Policies) > MaxAckPolicies:
		return fmt.Errorf("at most %d policies", MaxAckPolicies)
	}
	for name, version := range a.Policies {
		if err := validatePolicyRef(ns, name, version); err != nil {
			return err
		}
	}
	return nil
}

func validatePolicyRef(ns, name, version string) error {
	if len(name) > maxPolicyName {
		return fmt.Errorf("policy name longer than %d characters", maxPolicyName)
	}
	pns, pname, ok := strings.Cut(name, "/")
	if !ok || pns != ns || len(validation.IsDNS1123Subdomain(pname)) > 0 {
		return fmt.Errorf("policy %q is not <namespace>/<name> of namespace %s", truncate(name, 64), ns)
	}
	if len(version) > maxPolicyVersion {
		return fmt.Errorf("policy %s: version longer than %d characters", name, maxPolicyVersion)
	}
	for _, c := range version {
		if !isVersionChar(c) {
			return fmt.Errorf("policy %s: version holds characters other than [0-9A-Za-z._-]", name)
		}
	}
	return nil
}

func isVersionChar(c rune) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-'
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
