//go:build deps

// Package hack pins modules that packages under construction will use, so
// parallel work does not race on go.mod. Removed once every module is
// imported for real.
package hack

import (
	_ "github.com/coreos/go-oidc/v3/oidc"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/open-policy-agent/opa/v1/rego"
	_ "github.com/open-policy-agent/opa/v1/tester"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "golang.org/x/time/rate"
)
