package authn

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
)

// MaxFormScanBytes bounds the form body FormCredential reads.
const MaxFormScanBytes = 1 << 20

// ErrFormTooLarge means a form body with a credential beside it is larger
// than MaxFormScanBytes, so it cannot be checked for a second credential.
var ErrFormTooLarge = errors.New("authn: form body too large to check for a second credential")

// FormCredential refuses a request whose application/x-www-form-urlencoded
// body holds an access_token parameter (RFC 6750 2.2), a second credential
// beside the one already verified. The body is read (at most
// MaxFormScanBytes) and put back for the function. It returns an *Error
// with reason ambiguous_credential, ErrFormTooLarge, or a read error.
func FormCredential(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxFormScanBytes+1))
	if err != nil {
		return err
	}
	if len(body) > MaxFormScanBytes {
		return ErrFormTooLarge
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if hasParam(string(body), standardQueryName) {
		return fail(ReasonAmbiguousCredential, "credentials were presented in more than one place (access_token form parameter)")
	}
	return nil
}
