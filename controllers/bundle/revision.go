package bundle

import "github.com/authgate/authgate/proxy/config"

// The bundle's revision (config.ProxyConfig.Revision) orders the bundles
// of a namespace for the sidecars: the controller stamps a new one on
// every change it writes (Next), so a sidecar that got revision N over the
// push channel ignores the older file the kubelet projects later. Render
// leaves it out, so that rendering stays a pure function of the policies
// and a bundle can be compared with what is written (Stamp with the
// written revision). The revision is the bundle's first line
// (config.StampRevision), which the push channel reads without decoding.

// Stamp returns data, a rendered bundle, with revision rev (data
// unchanged for 0). A revision line data starts with is replaced.
func Stamp(data []byte, rev int64) []byte { return config.StampRevision(data, rev) }

// Revision is the revision of a written bundle, 0 when it has none (a
// bundle edited by hand): the next write then starts again from the clock
// (Next).
func Revision(data []byte) int64 { return config.HeadRevision(data) }

// Next is the revision that follows cur when a bundle is written at
// nowMillis (Unix milliseconds): above cur, and taken from the clock when
// that is higher, so a bundle Secret deleted and recreated (cur 0) still
// gets a revision above what the sidecars hold, as long as the clock did
// not go back.
func Next(cur, nowMillis int64) int64 {
	return max(cur+1, nowMillis)
}
