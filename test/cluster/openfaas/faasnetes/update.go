package faasnetes

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// update is pkg/handlers/update.go MakeUpdateHandler: the existing
// Deployment's first container gets the new image, pull policy, env,
// resources and probes, the pod template new labels (with "uid", the
// current nanosecond, so that every update rolls the pods) and
// annotations; the Service new annotations. 202; 404 when either is
// missing. As in the original, any other failure of the Deployment update
// is only logged and answered with an empty 200.
func (p *Provider) update(w http.ResponseWriter, r *http.Request) {
	req, ok := readDeployment(w, r, "unable to")
	if !ok {
		return
	}
	ns := p.Namespace
	if req.Namespace != "" {
		ns = req.Namespace
	}
	if ns != p.Namespace {
		http.Error(w, fmt.Sprintf("namespace must be: %s", p.Namespace), http.StatusBadRequest)
		return
	}
	annotations, err := buildAnnotations(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if status, err := p.updateDeployment(ns, req, annotations); err != nil {
		if !isNotFound(err) {
			p.Log.Printf("error updating deployment: %s.%s, error: %s\n", req.Service, ns, err)
			return
		}
		http.Error(w, fmt.Sprintf("unable update Deployment: %s.%s, error: %s", req.Service, ns, err.Error()), status)
		return
	}
	if status, err := p.updateService(ns, req, annotations); err != nil {
		if !isNotFound(err) {
			p.Log.Printf("error updating service: %s.%s, error: %s\n", req.Service, ns, err)
		}
		http.Error(w, fmt.Sprintf("unable update Service: %s.%s, error: %s", req.Service, req.Namespace, err.Error()), status)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) || apierrors.IsGone(err) }

func (p *Provider) updateDeployment(ns string, req FunctionDeployment, annotations map[string]string) (int, error) {
	ctx := context.Background()
	d, err := p.Client.AppsV1().Deployments(ns).Get(ctx, req.Service, metav1.GetOptions{})
	if err != nil {
		return http.StatusNotFound, err
	}
	if len(req.Secrets) > 0 {
		return http.StatusBadRequest, fmt.Errorf("secrets are not reproduced (asked for %v)", req.Secrets)
	}
	if len(d.Spec.Template.Spec.Containers) > 0 {
		c := &d.Spec.Template.Spec.Containers[0]
		c.Image = req.Image
		c.ImagePullPolicy = p.Deploy.ImagePullPolicy
		c.Env = buildEnvVars(req)
		configureReadOnlyRootFilesystem(req, d)
		configureContainerUserID(p.Deploy, d)
		d.Spec.Template.Spec.NodeSelector = map[string]string{}
		labels := map[string]string{LabelFunction: req.Service, "uid": strconv.Itoa(time.Now().Nanosecond())}
		if req.Labels != nil {
			if m := minReplicas(*req.Labels); m != nil {
				d.Spec.Replicas = m
			}
			for k, v := range *req.Labels {
				labels[k] = v
			}
		}
		d.Spec.Template.Labels = labels
		d.Annotations = annotations
		d.Spec.Template.Annotations = annotations
		resources, err := createResources(req)
		if err != nil {
			return http.StatusBadRequest, err
		}
		c.Resources = *resources
		probe := makeProbes(p.Deploy)
		c.LivenessProbe, c.ReadinessProbe = probe(p.Deploy.Liveness), probe(p.Deploy.Readiness)
	}
	if _, err := p.Client.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		return http.StatusInternalServerError, err
	}
	return http.StatusAccepted, nil
}

func (p *Provider) updateService(ns string, req FunctionDeployment, annotations map[string]string) (int, error) {
	ctx := context.Background()
	svc, err := p.Client.CoreV1().Services(ns).Get(ctx, req.Service, metav1.GetOptions{})
	if err != nil {
		return http.StatusNotFound, err
	}
	svc.Annotations = annotations
	if _, err := p.Client.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		return http.StatusInternalServerError, err
	}
	return http.StatusAccepted, nil
}
