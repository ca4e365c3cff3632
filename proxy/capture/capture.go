// Package capture redirects a pod's inbound TCP traffic for the function's
// ports to the authgate proxy, so that nothing reaches the function around
// the proxy: a caller that dials the function's own port on the pod IP is
// answered by the proxy instead. It runs once, as the injected init
// container (authgate-proxy capture), in the pod's network namespace, with
// CAP_NET_ADMIN, before any other container starts.
//
// The rules are one nftables table, "inet authgate", written with
// github.com/google/nftables in a single atomic batch:
//
//	table inet authgate {
//	    chain prerouting {
//	        type nat hook prerouting priority dstnat; policy accept;
//	        iifname "lo" return
//	        tcp dport 8082 redirect to :8080
//	    }
//	}
//
// Only packets that arrive from outside the pod pass the prerouting hook
// with a new connection: the proxy's own upstream connections to
// 127.0.0.1:<function port> (and queue-proxy's to the proxy) are local
// traffic on the loopback interface, which the first rule leaves alone, so
// the proxy still reaches the function and nothing loops. The table is
// replaced as a whole, so running capture again (an init container restart)
// leaves exactly one copy of the rules.
package capture

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName and ChainName name what Apply writes.
const (
	TableName = "authgate"
	ChainName = "prerouting"
)

// Redirect sends inbound TCP for Port to the proxy's port To.
type Redirect struct {
	Port uint16
	To   uint16
}

// String is the flag form, "<port>=<to>".
func (r Redirect) String() string { return fmt.Sprintf("%d=%d", r.Port, r.To) }

// ParseRedirect reads the flag form "<port>=<to>" (both 1-65535, not
// equal).
func ParseRedirect(s string) (Redirect, error) {
	from, to, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return Redirect{}, fmt.Errorf("redirect %q: want <function port>=<proxy port>, e.g. 8080=8090", s)
	}
	p, err := parsePort(from)
	if err != nil {
		return Redirect{}, fmt.Errorf("redirect %q: function port: %w", s, err)
	}
	t, err := parsePort(to)
	if err != nil {
		return Redirect{}, fmt.Errorf("redirect %q: proxy port: %w", s, err)
	}
	if p == t {
		return Redirect{}, fmt.Errorf("redirect %q: the function port and the proxy port are the same", s)
	}
	return Redirect{Port: p, To: t}, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(n), nil
}

// Validate refuses an empty list, a port redirected twice and a port that
// is both redirected and a redirect's target (traffic for it could never
// reach the proxy).
func Validate(rs []Redirect) error {
	if len(rs) == 0 {
		return errors.New("no port to redirect")
	}
	seen := map[uint16]bool{}
	for _, r := range rs {
		if r.Port == 0 || r.To == 0 || r.Port == r.To {
			return fmt.Errorf("redirect %s: ports must be 1-65535 and differ", r)
		}
		if seen[r.Port] {
			return fmt.Errorf("port %d is redirected twice", r.Port)
		}
		seen[r.Port] = true
	}
	for _, r := range rs {
		if seen[r.To] {
			return fmt.Errorf("port %d is both redirected and a redirect's target", r.To)
		}
	}
	return nil
}

// Apply replaces the authgate table in the network namespace of conn (nil:
// a new connection in the caller's namespace) with rules for rs, in one
// batch: either every rule is in place or none is.
func Apply(conn *nftables.Conn, rs []Redirect) error {
	if err := Validate(rs); err != nil {
		return err
	}
	if conn == nil {
		c, err := nftables.New()
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		conn = c
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Redirect) int { return int(a.Port) - int(b.Port) })
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	// Add, delete, add: the delete cannot fail for a missing table, and an
	// old table (a restarted init container) goes in the same batch.
	conn.AddTable(table)
	conn.DelTable(table)
	conn.AddTable(table)
	policy := nftables.ChainPolicyAccept
	chain := conn.AddChain(&nftables.Chain{
		Name:     ChainName,
		Table:    table,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityNATDest,
		Policy:   &policy,
	})
	conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: loopbackReturn()})
	for _, r := range rs {
		conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: redirect(r)})
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: writing table inet %s: %w", TableName, err)
	}
	return nil
}

// loopbackReturn is `iifname "lo" return`.
func loopbackReturn() []expr.Any {
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, "lo")
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}
}

// redirect is `tcp dport <Port> redirect to :<To>`.
func redirect(r Redirect) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		// The destination port: 2 bytes at offset 2 of the TCP header.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(r.Port)},
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(r.To)},
		&expr.Redir{RegisterProtoMin: 1},
	}
}

// Installed lists the redirects in the authgate table of conn's namespace,
// in rule order, so the init container can log what it enforced and a test
// can read the rules back.
func Installed(conn *nftables.Conn) ([]Redirect, error) {
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	rules, err := conn.GetRules(table, &nftables.Chain{Name: ChainName, Table: table})
	if err != nil {
		return nil, fmt.Errorf("nftables: reading table inet %s: %w", TableName, err)
	}
	var out []Redirect
	for _, rule := range rules {
		var r Redirect
		for _, e := range rule.Exprs {
			switch e := e.(type) {
			case *expr.Cmp:
				if len(e.Data) == 2 {
					r.Port = binaryutil.BigEndian.Uint16(e.Data)
				}
			case *expr.Immediate:
				if len(e.Data) == 2 {
					r.To = binaryutil.BigEndian.Uint16(e.Data)
				}
			}
		}
		if r.Port != 0 && r.To != 0 {
			out = append(out, r)
		}
	}
	return out, nil
}
