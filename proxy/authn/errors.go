package authn

import (
	"errors"
	"net/http"
)

// Reasons an authentication fails. They appear in responses, metrics and
// logs, so they never carry the credential.
const (
	ReasonMissingCredential   = "missing_credential"
	ReasonAmbiguousCredential = "ambiguous_credential"
	ReasonMalformedCredential = "malformed_credential" //nolint:gosec // a reason code, not a credential
	ReasonOversizedCredential = "oversized_credential"
	ReasonUnknownIssuer       = "unknown_issuer"
	ReasonInvalidToken        = "invalid_token"
	ReasonUnsupportedAlg      = "unsupported_algorithm"
	ReasonExpired             = "expired"
	ReasonNotYetValid         = "not_yet_valid"
	ReasonIssuedInFuture      = "issued_in_future"
	ReasonTokenTooOld         = "token_too_old"
	ReasonInvalidAudience     = "invalid_audience"
	ReasonInvalidClientID     = "invalid_client_id"
	ReasonInvalidType         = "invalid_type"
	ReasonMissingClaim        = "missing_claim"
	ReasonInvalidClaims       = "invalid_claims"
	ReasonKeysUnavailable     = "keys_unavailable"
	ReasonUnknownAPIKey       = "unknown_api_key"
	ReasonExpiredAPIKey       = "expired_api_key"
	// ReasonThrottled: an offline attempt (a client throttled for failures)
	// met a credential it could only check by fetching keys or guessing.
	ReasonThrottled = "throttled"
)

// Error is an authentication failure. Description is safe to show clients:
// it never contains the credential. Err, when set, is the underlying cause
// for logs; it never contains the credential either.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// Status is the HTTP status to answer: 400 for ambiguous requests, 503
	// when the gateway cannot verify (no keys), 429 when throttled,
	// otherwise 401.
	Status int
	// Description explains the failure to the client.
	Description string
	// Err is the underlying cause, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	msg := "authn: " + e.Reason
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// AsError returns the *Error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// ServerFault reports a failure of the gateway or the IdP, not of the
// client's credential: it is answered 503 and never counted against the
// client.
func (e *Error) ServerFault() bool { return e.Status >= http.StatusInternalServerError }

func fail(reason, desc string) *Error {
	status := http.StatusUnauthorized
	switch reason {
	case ReasonAmbiguousCredential:
		status = http.StatusBadRequest
	case ReasonKeysUnavailable:
		status = http.StatusServiceUnavailable
	case ReasonThrottled:
		status = http.StatusTooManyRequests
	}
	return &Error{Reason: reason, Status: status, Description: desc}
}

func failErr(reason, desc string, err error) *Error {
	e := fail(reason, desc)
	e.Err = err
	return e
}
