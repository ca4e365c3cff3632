package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/identity"
)

// stepUp is the answer to a credential whose authentication is older than
// the route's requireMFA.maxAge (or does not say when it was, auth_time):
// 401 with RFC 9470's insufficient_user_authentication challenge, naming
// max_age and acr_values so the client can ask the IdP for a fresh login.
// (A credential without MFA evidence at all keeps its 403 mfa_required.)
func stepUp(route *config.Route, reason string, id *identity.Identity) *outcome {
	m := route.RequireMFA
	detail := "this route requires an authentication within the last " + m.MaxAge.Duration.String()
	ch := `Bearer realm="authgate", error="insufficient_user_authentication", error_description="` + detail + `"`
	if len(m.ACR) > 0 {
		ch += `, acr_values="` + strings.Join(m.ACR, " ") + `"`
	}
	if m.MaxAge.Duration > 0 {
		ch += `, max_age=` + strconv.FormatInt(int64(m.MaxAge.Duration/time.Second), 10)
	}
	return &outcome{route: route.Name, status: http.StatusUnauthorized, reason: reason, detail: detail, id: id, challenge: ch}
}
