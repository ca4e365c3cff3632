package capture_test

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/authgate/authgate/proxy/capture"
)

func TestParseRedirect(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want capture.Redirect
		err  bool
	}{
		{in: "8080=8090", want: capture.Redirect{Port: 8080, To: 8090}},
		{in: " 8082 = 8080 ", want: capture.Redirect{Port: 8082, To: 8080}},
		{in: "8080", err: true},
		{in: "8080=8080", err: true},
		{in: "0=8090", err: true},
		{in: "8080=65536", err: true},
		{in: "http=8090", err: true},
		{in: "", err: true},
	} {
		got, err := capture.ParseRedirect(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseRedirect(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil {
			if back, err := capture.ParseRedirect(got.String()); err != nil || back != got {
				t.Errorf("ParseRedirect(%q.String()) = %v, %v", tc.in, back, err)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		rs   []capture.Redirect
		ok   bool
	}{
		{"one", []capture.Redirect{{8080, 8090}}, true},
		{"two to one proxy", []capture.Redirect{{8080, 8090}, {9000, 8090}}, true},
		{"none", nil, false},
		{"twice", []capture.Redirect{{8080, 8090}, {8080, 8091}}, false},
		{"target redirected", []capture.Redirect{{8080, 8090}, {8090, 8091}}, false},
		{"zero", []capture.Redirect{{0, 8090}}, false},
	} {
		if err := capture.Validate(tc.rs); (err == nil) != tc.ok {
			t.Errorf("%s: Validate(%v) = %v, want ok=%v", tc.name, tc.rs, err, tc.ok)
		}
	}
}

// A pod and another pod, each in a network namespace this test creates,
// joined by a veth pair and with no route anywhere else. Needs root
// (CAP_SYS_ADMIN for the namespaces, CAP_NET_ADMIN for nftables): make test
// runs as root in CI, where a missing privilege fails the test instead of
// skipping it.
type topology struct {
	pod, peer netns.NsHandle
}

const (
	podV4, peerV4 = "10.231.7.2", "10.231.7.1"
	podV6, peerV6 = "fd00:a7:7::2", "fd00:a7:7::1"
)

func newTopology(t *testing.T) *topology {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("capture tests need root (network namespaces and nftables); CI runs as root")
		}
		t.Skip("needs root: network namespaces and nftables")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = orig.Close() }()
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // this thread must not stay in a test namespace
		}
	}()
	topo := &topology{}
	for _, h := range []*netns.NsHandle{&topo.pod, &topo.peer} {
		if *h, err = netns.New(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		if err := netns.Set(orig); err != nil {
			t.Fatal(err)
		}
	}
	podH, err := netlink.NewHandleAt(topo.pod)
	if err != nil {
		t.Fatal(err)
	}
	defer podH.Close()
	peerH, err := netlink.NewHandleAt(topo.peer)
	if err != nil {
		t.Fatal(err)
	}
	defer peerH.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(topo.peer))}
	if err := podH.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	for _, side := range []struct {
		h      *netlink.Handle
		v4, v6 string
	}{{podH, podV4, podV6}, {peerH, peerV4, peerV6}} {
		for _, name := range []string{"lo", "eth0"} {
			l, err := side.h.LinkByName(name)
			if err != nil {
				t.Fatal(err)
			}
			if name == "eth0" {
				for _, a := range []string{side.v4 + "/24", side.v6 + "/64"} {
					addr, err := netlink.ParseAddr(a)
					if err != nil {
						t.Fatal(err)
					}
					addr.Flags = unix.IFA_F_NODAD
					if err := side.h.AddrAdd(l, addr); err != nil {
						t.Fatalf("address %s: %v", a, err)
					}
				}
			}
			if err := side.h.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
	}
	return topo
}

// in runs f on a thread in ns; sockets made there stay in ns.
func in(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Error(err)
			return
		}
		if err := netns.Set(ns); err != nil {
			t.Error(err)
			return
		}
		f()
		if err := netns.Set(orig); err != nil {
			return // the thread dies with the goroutine while still locked
		}
		_ = orig.Close()
		runtime.UnlockOSThread()
	}()
	<-done
}

// banner serves name to every connection on ns's port.
func banner(t *testing.T, ns netns.NsHandle, port, name string) {
	t.Helper()
	var l net.Listener
	var err error
	in(t, ns, func() { l, err = net.Listen("tcp", net.JoinHostPort("::", port)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(name))
			_ = c.Close()
		}
	}()
}

// who dials addr from ns and returns the banner that answers.
func who(t *testing.T, ns netns.NsHandle, addr string) string {
	t.Helper()
	var c net.Conn
	var err error
	in(t, ns, func() { c, err = net.DialTimeout("tcp", addr, 30*time.Second) })
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return "dial error: " + op.Err.Error()
		}
		return "dial error: " + err.Error()
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return "read error: " + err.Error()
	}
	return string(b)
}

func TestApplyRedirectsInboundOnly(t *testing.T) {
	topo := newTopology(t)
	banner(t, topo.pod, "18080", "function")
	banner(t, topo.pod, "18081", "function-metrics")
	banner(t, topo.pod, "18090", "proxy")

	function := []string{net.JoinHostPort(podV4, "18080"), net.JoinHostPort(podV6, "18080")}
	// Without capture the other pod reaches the function around the proxy:
	// the hole this package closes.
	for _, a := range function {
		if got := who(t, topo.peer, a); got != "function" {
			t.Fatalf("before capture, %s from the other pod = %q, want the function", a, got)
		}
	}

	conn, err := nftables.New(nftables.WithNetNSFd(int(topo.pod)))
	if err != nil {
		t.Fatal(err)
	}
	rs := []capture.Redirect{{Port: 18080, To: 18090}}
	for range 2 { // a restarted init container applies again
		if err := capture.Apply(conn, rs); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := capture.Installed(conn); err != nil || !slices.Equal(got, rs) {
		t.Fatalf("Installed = %v, %v; want exactly %v", got, err, rs)
	}

	for _, tc := range []struct {
		name string
		from netns.NsHandle
		addr string
		want string
	}{
		{"other pod to the function port (IPv4)", topo.peer, function[0], "proxy"},
		{"other pod to the function port (IPv6)", topo.peer, function[1], "proxy"},
		{"other pod to the proxy port", topo.peer, net.JoinHostPort(podV4, "18090"), "proxy"},
		{"other pod to a port not captured", topo.peer, net.JoinHostPort(podV4, "18081"), "function-metrics"},
		// The proxy's upstream connection and queue-proxy's hop are loopback.
		{"inside the pod to 127.0.0.1", topo.pod, "127.0.0.1:18080", "function"},
		{"inside the pod to ::1", topo.pod, "[::1]:18080", "function"},
		{"inside the pod to its own IP", topo.pod, function[0], "function"},
	} {
		if got := who(t, tc.from, tc.addr); got != tc.want {
			t.Errorf("%s: %s answered by %q, want %q", tc.name, tc.addr, got, tc.want)
		}
	}

	// A second pod's rules change nothing here: the table is per namespace.
	other, err := nftables.New(nftables.WithNetNSFd(int(topo.peer)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := capture.Installed(other); err == nil && len(got) > 0 {
		t.Errorf("the other pod's namespace has redirects %v", got)
	}
}

func TestApplyRefusesInvalid(t *testing.T) {
	// Validation comes before any netlink traffic: no privilege needed.
	if err := capture.Apply(nil, nil); err == nil {
		t.Fatal("Apply with no redirects succeeded")
	}
}
