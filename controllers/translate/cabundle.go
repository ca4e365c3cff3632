package translate

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/proxy/cabundle"
)

// ClusterCAConfigMap is the ConfigMap Kubernetes publishes into every
// namespace with the cluster's CA (key ClusterCAKey). The controller reads
// it without a label: it cannot be labelled by its users.
const ClusterCAConfigMap = "kube-root-ca.crt"

// ClusterCAKey is the key of ClusterCAConfigMap holding the CA, and the
// default key of certificateAuthority.configMapKeyRef.
const ClusterCAKey = "ca.crt"

// caHint says which ConfigMaps the controller can read a CA bundle from.
const caHint = `CA bundle ConfigMaps must carry the label ` + LabelRole + `: ` + RoleCA +
	` to be read (` + ClusterCAConfigMap + ` is read without it)`

// CABundle resolves spec.authentication.jwt[i].certificateAuthority of a
// policy in namespace ns to its normalized PEM (cabundle.Bundle.PEM); ""
// when the issuer names none, so the system roots apply. cms are the
// ConfigMaps of ns that may hold CA bundles, by name. A missing ConfigMap
// or key, or a value that is not a usable bundle, is a Problem: the issuer
// must then not be trusted at all, never with the system roots instead.
// Messages name the ConfigMap and key, never the bundle's content.
func CABundle(ns string, i int, j v1alpha1.JWTIssuer, cms map[string]*corev1.ConfigMap) (string, *Problem) {
	if j.CertificateAuthority == nil {
		return "", nil
	}
	ref := j.CertificateAuthority.ConfigMapKeyRef
	key := ref.Key
	if key == "" {
		key = ClusterCAKey
	}
	field := fmt.Sprintf("spec.authentication.jwt[%d].certificateAuthority.configMapKeyRef", i)
	cm, ok := cms[ref.Name]
	if !ok || cm == nil || (cm.Namespace != "" && cm.Namespace != ns) {
		return "", problem(ReasonConfigMapNotFound, "%s: ConfigMap %q not found in namespace %s (%s)", field, ref.Name, ns, caHint)
	}
	pem, ok := cm.Data[key]
	if !ok {
		return "", problem(ReasonCAKeyNotFound, "%s: ConfigMap %q has no key %q in its data (keys: %s)",
			field, ref.Name, key, strings.Join(dataKeys(cm), ", "))
	}
	b, err := cabundle.Parse(pem)
	if err != nil {
		return "", problem(ReasonCABundleInvalid, "%s: key %q of ConfigMap %q is not a usable CA bundle: %v", field, key, ref.Name, err)
	}
	return b.PEM, nil
}
