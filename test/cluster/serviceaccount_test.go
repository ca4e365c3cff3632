package cluster

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/test/wait"
)

// The topology of examples/knative-serviceaccount-tokens.yaml: two Knative
// functions in one namespace trusting the cluster's own ServiceAccount
// issuer, and callers in another namespace.
const (
	saNS        = "sa-demo"
	callersNS   = "callers"
	callerSub   = "system:serviceaccount:callers:caller"
	adminSub    = "system:serviceaccount:callers:admin"
	ordersRev   = "orders-00001"
	billingRev  = "billing-00001"
	clusterIssU = "https://kubernetes.default.svc.cluster.local"
)

// Source addresses hack/cluster/node.sh gives the node namespace besides the
// node IP, so the test's clients can be told apart.
var clientAddrs = []string{"10.77.0.11", "10.77.0.12", "10.77.0.13"}

var saTopologyUp bool

// saTopology brings up Knative, the two functions and the caller pod, and
// waits until both policies have the issuer's keys.
func saTopology(t *testing.T) (callerURL, activator string) {
	t.Helper()
	installKnative(t)
	activator = serviceURL(t, knativeNS, "activator-service")
	if !saTopologyUp {
		apply(t, filepath.Join(repoRoot, "test", "cluster", "serviceaccount", "callers.yaml"))
		apply(t, filepath.Join(repoRoot, "examples", "knative-serviceaccount-tokens.yaml"))
		for _, rev := range []string{ordersRev, billingRev} {
			waitRevisionReady(t, saNS, rev)
		}
		readyPods(t, callersNS, map[string]string{"app": "caller"}, 1)
		for _, name := range []string{"orders", "billing"} {
			waitIssuersReady(t, saNS, name)
		}
		saTopologyUp = true
	}
	return serviceURL(t, callersNS, "caller"), activator
}

// waitIssuersReady waits for an AuthPolicy's IssuersReady condition: the
// controller fetched the cluster issuer's discovery document and keys,
// trusting kube-root-ca.crt.
func waitIssuersReady(t *testing.T, ns, name string) {
	t.Helper()
	wait.ForNil(t, podReadyTimeout, func() error {
		var p v1alpha1.AuthPolicy
		if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
			return err
		}
		c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionIssuersReady)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != p.Generation {
			return fmt.Errorf("authpolicy %s/%s IssuersReady: %+v, issuers %+v", ns, name, c, p.Status.Issuers)
		}
		return nil
	}, "authpolicy %s/%s IssuersReady", ns, name)
}

// revisionHeaders are what the ingress adds for the activator.
func revisionHeaders(rev string) map[string]string {
	return map[string]string{"Knative-Serving-Namespace": saNS, "Knative-Serving-Revision": rev}
}

// callFromPod has the caller pod send a request with its projected token
// for audience token ("" for none) and returns what came back.
func callFromPod(t *testing.T, callerURL, url, token string, hdr map[string]string) reply {
	t.Helper()
	in, _ := json.Marshal(map[string]any{"url": url, "headers": hdr, "token": token})
	var out struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
		Error  string `json:"error"`
	}
	wait.ForNil(t, requestTimeout, func() error {
		resp, err := httpClientFrom("").Post(callerURL+"/call", "application/json", bytes.NewReader(in))
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("caller: %s: %s", resp.Status, b)
		}
		return json.Unmarshal(b, &out)
	}, "caller pod to call %s", url)
	if out.Error != "" {
		t.Fatalf("caller pod: %s", out.Error)
	}
	return newReply(out.Status, out.Body)
}

// saToken is a token of ServiceAccount ns/sa for audience aud from the
// TokenRequest API: signed by the same issuer as a projected one, but bound
// to no pod.
func saToken(t *testing.T, ns, sa, aud string) string {
	t.Helper()
	exp := int64(3600)
	tr, err := clientset.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{aud}, ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// TestServiceAccountTokens: a caller pod presents the token the kubelet
// projected for each function's audience; the functions' AuthPolicies trust
// the cluster's own issuer (the API server's OIDC discovery and JWKS, fetched
// by the controller through kube-root-ca.crt and shipped to the sidecars),
// and the nested kubernetes.io claims decide routes (requiredClaims,
// requireClaims), fill headers and feed Rego.
func TestServiceAccountTokens(t *testing.T) {
	dumpOnFailure(t, saNS)
	dumpOnFailure(t, callersNS)
	callerURL, activator := saTopology(t)
	orders, billing := revisionHeaders(ordersRev), revisionHeaders(billingRev)

	for _, tc := range []struct {
		name, path, token string
		hdr               map[string]string
		want              int
		sa                string // the X-Authgate-Caller-Service-Account the function must see
	}{
		{"orders with its audience", "/hello/x", "orders", orders, http.StatusOK, "caller"},
		{"orders, Rego: a pod-bound token", "/hello/pod-bound/x", "orders", orders, http.StatusOK, "caller"},
		{"orders, admin route needs the admin account", "/admin/x", "orders", orders, http.StatusForbidden, ""},
		{"orders with billing's audience", "/hello/x", "billing", orders, http.StatusUnauthorized, ""},
		{"orders with an unrelated audience", "/hello/x", "unrelated", orders, http.StatusUnauthorized, ""},
		{"orders without a token", "/hello/x", "", orders, http.StatusUnauthorized, ""},
		{"billing with its audience", "/hello/x", "billing", billing, http.StatusOK, "caller"},
		{"billing with orders' audience", "/hello/x", "orders", billing, http.StatusUnauthorized, ""},
	} {
		t.Run("projected token: "+tc.name, func(t *testing.T) {
			r := callFromPod(t, callerURL, activator+tc.path, tc.token, tc.hdr)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.want != http.StatusOK {
				return
			}
			checkSeen(t, r, callerSub, tc.sa)
			if got := r.header1("Authorization"); got != "" {
				t.Fatal("the function received the token")
			}
		})
	}

	c := httpClientFrom("")
	via := withHeaders(c, orders)
	callerTok := saToken(t, callersNS, "caller", "orders")
	for _, tc := range []struct {
		name, path, token string
		want              int
		sub, sa           string
	}{
		{"Rego refuses a token bound to no pod", "/hello/pod-bound/x", callerTok, http.StatusForbidden, "", ""},
		{"the caller account on hello", "/hello/x", callerTok, http.StatusOK, callerSub, "caller"},
		{"the admin account on the admin route", "/admin/x", saToken(t, callersNS, "admin", "orders"), http.StatusOK, adminSub, "admin"},
		{"another namespace's account", "/hello/x", saToken(t, saNS, "default", "orders"), http.StatusUnauthorized, "", ""},
		{"a tampered signature", "/hello/x", tamper(callerTok), http.StatusUnauthorized, "", ""},
	} {
		t.Run("TokenRequest token: "+tc.name, func(t *testing.T) {
			r := send(t, via, http.MethodGet, activator+tc.path, map[string]string{"Authorization": "Bearer " + tc.token})
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.want == http.StatusOK {
				checkSeen(t, r, tc.sub, tc.sa)
			}
		})
	}

	t.Run("no token in the sidecar's log", func(t *testing.T) {
		for _, p := range revisionPods(t, saNS, ordersRev) {
			logs, err := clientset.CoreV1().Pods(saNS).GetLogs(p.Name, &corev1.PodLogOptions{Container: "authgate-proxy"}).DoRaw(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(logs) == 0 {
				t.Fatalf("pod %s: the sidecar logged nothing (its decisions should be there)", p.Name)
			}
			if sig := callerTok[strings.LastIndexByte(callerTok, '.')+1:]; bytes.Contains(logs, []byte(sig)) {
				t.Fatalf("pod %s: the sidecar's log holds a token's signature", p.Name)
			}
		}
	})
}

// checkSeen checks the identity headers the function received.
func checkSeen(t *testing.T, r reply, sub, sa string) {
	t.Helper()
	if r.received == nil {
		t.Fatalf("200 without the function's answer: %s", r.body)
	}
	for h, want := range map[string]string{
		"X-Authgate-Subject":                sub,
		"X-Authgate-Issuer":                 clusterIssU,
		"X-Authgate-Caller-Service-Account": sa,
	} {
		if got := r.header1(h); got != want {
			t.Errorf("function saw %s %q, want %q", h, got, want)
		}
	}
}

// tamper flips one character of a JWT's signature.
func tamper(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 1
	b := []byte(tok)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// garbage are the credentials of the flood: never valid, each a different
// way to fail (a random string, a JWT with an unknown key id, a real token
// with a broken signature, a real token for an audience no function has).
func garbage(t *testing.T) []string {
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"no-such-key","typ":"JWT"}`))
	body := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + clusterIssU + `","aud":["orders"],"sub":"system:serviceaccount:callers:caller","exp":4102444800}`))
	return []string{
		"not-a-token",
		hdr + "." + body + "." + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 256)),
		tamper(saToken(t, callersNS, "caller", "orders")),
		saToken(t, callersNS, "caller", "unrelated"),
	}
}

// TestBadTokenFlood: one client sends a flood of bad credentials while
// other clients send valid ones, through the real hops -- the activator and
// queue-proxy to the two Knative functions that share the cluster issuer,
// and the OpenFaaS gateway to echo-fn. Through the activator every client
// arrives from the activator's address, so a throttle keyed by address hits
// the valid callers too: they must still get every request through, and the
// flood none.
func TestBadTokenFlood(t *testing.T) {
	dumpOnFailure(t, saNS)
	dumpOnFailure(t, "openfaas-fn")
	_, activator := saTopology(t)
	gw, _ := openFaaSEchoFn(t)
	ordersQueue := serviceURL(t, saNS, ordersRev+"-private")

	type target struct {
		name, url string
		hdr       map[string]string
		valid     string // header value of a valid credential
		cred      string // the credential header
	}
	bearer := func(tok string) string { return "Bearer " + tok }
	targets := []target{
		{"orders via activator", activator + "/hello/x", revisionHeaders(ordersRev), bearer(saToken(t, callersNS, "caller", "orders")), "Authorization"},
		{"billing via activator", activator + "/hello/x", revisionHeaders(billingRev), bearer(saToken(t, callersNS, "caller", "billing")), "Authorization"},
		{"orders via queue-proxy", ordersQueue + "/hello/x", nil, bearer(saToken(t, callersNS, "caller", "orders")), "Authorization"},
		{"echo-fn via the OpenFaaS gateway", gw + "/function/echo-fn.openfaas-fn/hello/x", nil, openFaaSKey, "X-API-Key"},
	}
	// The revisions may have scaled to zero since the last test (an idle
	// revision goes in well under a minute here): wake them through the
	// activator, and wait for queue-proxy to answer directly, so the
	// direct target has a pod. The traffic below keeps them up.
	for _, tg := range targets[:3] {
		hdr := map[string]string{tg.cred: tg.valid}
		wait.ForNil(t, podReadyTimeout, func() error {
			for _, rev := range []string{ordersRev, billingRev} {
				_, _ = do(t.Context(), httpClientFrom(""), http.MethodGet, activator+"/hello/x", merge(revisionHeaders(rev), map[string]string{tg.cred: bearer(saToken(t, callersNS, "caller", strings.TrimSuffix(rev, "-00001")))}))
			}
			r, err := do(t.Context(), httpClientFrom(""), http.MethodGet, tg.url, merge(tg.hdr, hdr))
			if err != nil {
				return err
			}
			if r.status != http.StatusOK {
				return fmt.Errorf("%s: status %d: %.200s", tg.name, r.status, r.body)
			}
			return nil
		}, "%s to answer before the flood", tg.name)
	}
	bad := garbage(t)
	const floodPerTarget = 600
	var (
		floodSent, floodOK, validSent atomic.Int64
		mu                            sync.Mutex
		floodStatus                   = map[int]int{}
		validFailures                 []string
	)
	flood := httpClientFrom(clientAddrs[0])
	var floodWG sync.WaitGroup
	for _, tg := range targets {
		for w := range 2 {
			floodWG.Add(1)
			go func() {
				defer floodWG.Done()
				for i := range floodPerTarget / 2 {
					r, err := do(t.Context(), flood, http.MethodGet, tg.url, merge(tg.hdr, map[string]string{tg.cred: garbageFor(tg.cred, bad, i+w)}))
					floodSent.Add(1)
					mu.Lock()
					if err != nil {
						floodStatus[0]++
					} else {
						floodStatus[r.status]++
					}
					mu.Unlock()
					if err == nil && r.status == http.StatusOK {
						floodOK.Add(1)
					}
				}
			}()
		}
	}
	done := make(chan struct{})
	go func() { floodWG.Wait(); close(done) }()
	var validWG sync.WaitGroup
	for _, src := range clientAddrs[1:] {
		c := httpClientFrom(src)
		validWG.Add(1)
		go func() {
			defer validWG.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				tg := targets[i%len(targets)]
				r, err := do(t.Context(), c, http.MethodGet, tg.url, merge(tg.hdr, map[string]string{tg.cred: tg.valid}))
				validSent.Add(1)
				if err != nil || r.status != http.StatusOK || r.received == nil {
					mu.Lock()
					validFailures = append(validFailures, fmt.Sprintf("%s from %s: status %d err %v: %.200s", tg.name, src, r.status, err, r.body))
					mu.Unlock()
				}
			}
		}()
	}
	validWG.Wait()
	t.Logf("flood: %d bad requests from %s, statuses %v; valid: %d requests from %v, %d failed",
		floodSent.Load(), clientAddrs[0], floodStatus, validSent.Load(), clientAddrs[1:], len(validFailures))
	figs.add("flood_bad_requests", float64(floodSent.Load()), "requests")
	figs.add("flood_valid_requests", float64(validSent.Load()), "requests")
	figs.add("flood_valid_requests_failed", float64(len(validFailures)), "requests")
	if n := floodOK.Load(); n != 0 {
		t.Errorf("%d bad credentials got 200", n)
	}
	if validSent.Load() == 0 {
		t.Fatal("no valid request was sent during the flood")
	}
	for i, f := range validFailures {
		if i == 10 {
			t.Errorf("... and %d more", len(validFailures)-10)
			break
		}
		t.Errorf("valid request failed during the flood: %s", f)
	}
}

// merge is a new map with the entries of a, then b.
func merge(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// garbageFor picks the i-th bad credential for a credential header.
func garbageFor(header string, bad []string, i int) string {
	if header == "X-API-Key" {
		return fmt.Sprintf("guess-%030d", i)
	}
	return "Bearer " + bad[i%len(bad)]
}
