package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/berth-registry/berth/internal/registrytest"
)

const chart = "../../deploy/helm/berth"

// scaled are the values of a scaled install (PostgreSQL and S3 from Secrets).
var scaled = []string{
	"--set", "mode=scaled", "--set", "replicaCount=3",
	"--set", "scaled.databaseSecret.name=berth-db", "--set", "scaled.storage=s3://registry?endpoint=minio:9000&region=us-east-1",
	"--set", "scaled.s3CredentialsSecret.name=berth-s3", "--set", "scaled.keyEncryptionKeySecret.name=berth-kek",
	"--set", "bootstrap.passwordSecret.name=berth-bootstrap",
	"--set", "ingress.enabled=true", "--set", "ingress.className=nginx", "--set", "serviceMonitor.enabled=true",
	"--set", "config.limits.max_blob_bytes=10GiB",
}

// rendered is one install's objects, decoded strictly into the Kubernetes API's own types (an
// unknown field or a value of the wrong type fails the decoding: the offline schema check).
type rendered struct {
	deployment     *appsv1.Deployment
	service        *corev1.Service
	configMap      *corev1.ConfigMap
	pvc            *corev1.PersistentVolumeClaim
	ingress        *networkingv1.Ingress
	job            *batchv1.Job
	serviceMonitor map[string]any
}

func render(t *testing.T, helm string, args ...string) rendered {
	t.Helper()
	out, err := exec.Command(helm, append([]string{"template", "r", chart}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	var r rendered
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("a rendered document: %v\n%s", err, doc)
		}
		strict := func(into any) {
			if err := yaml.UnmarshalStrict(doc, into); err != nil {
				t.Errorf("%s %s does not match the Kubernetes API: %v\n%s", head.APIVersion, head.Kind, err, doc)
			}
		}
		switch head.APIVersion + " " + head.Kind {
		case " ":
			continue // empty
		case "apps/v1 Deployment":
			r.deployment = &appsv1.Deployment{}
			strict(r.deployment)
		case "v1 Service":
			r.service = &corev1.Service{}
			strict(r.service)
		case "v1 ConfigMap":
			r.configMap = &corev1.ConfigMap{}
			strict(r.configMap)
		case "v1 PersistentVolumeClaim":
			r.pvc = &corev1.PersistentVolumeClaim{}
			strict(r.pvc)
		case "networking.k8s.io/v1 Ingress":
			r.ingress = &networkingv1.Ingress{}
			strict(r.ingress)
		case "batch/v1 Job":
			r.job = &batchv1.Job{}
			strict(r.job)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			strict(&r.serviceMonitor)
		default:
			t.Errorf("an object of an unexpected kind: %s %s", head.APIVersion, head.Kind)
		}
	}
	return r
}

// TestHelmChart: helm lint passes in both modes; each renders objects the Kubernetes API
// accepts, with what each mode needs; the berth.yaml it renders passes berth serve --check;
// wrong values fail with a message that says what to do.
func TestHelmChart(t *testing.T) {
	helm := need(t, "helm")
	for _, args := range [][]string{nil, scaled} {
		if out, err := exec.Command(helm, append([]string{"lint", "--strict", chart}, args...)...).CombinedOutput(); err != nil {
			t.Errorf("helm lint %v: %v\n%s", args, err, out)
		}
	}

	single := render(t, helm)
	d := single.deployment
	if d == nil || single.service == nil || single.configMap == nil || single.pvc == nil {
		t.Fatalf("single mode renders a Deployment, Service, ConfigMap and PVC: %+v", single)
	}
	if single.job != nil || single.ingress != nil || single.serviceMonitor != nil {
		t.Errorf("single mode by default renders no Job, Ingress or ServiceMonitor")
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	for what, ok := range map[string]bool{
		"one replica":                   *d.Spec.Replicas == 1,
		"Recreate (one SQLite at once)": d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType,
		"the PVC at /data": hasVolume(pod, "data", func(v corev1.Volume) bool {
			return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == single.pvc.Name
		}) && hasMount(c, "data", "/data"),
		"readiness on /readyz":     c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet.Path == "/readyz",
		"liveness on /healthz":     c.LivenessProbe != nil && c.LivenessProbe.HTTPGet.Path == "/healthz",
		"resource requests":        !c.Resources.Requests.Cpu().IsZero() && !c.Resources.Requests.Memory().IsZero(),
		"non-root, read-only root": *pod.SecurityContext.RunAsNonRoot && *c.SecurityContext.ReadOnlyRootFilesystem && !*c.SecurityContext.AllowPrivilegeEscalation,
		"the config file":          strings.Join(c.Args, " ") == "serve --config /etc/berth/berth.yaml" && hasMount(c, "config", "/etc/berth"),
	} {
		if !ok {
			t.Errorf("single mode: the Deployment lacks %s", what)
		}
	}
	checkConfig(t, single.configMap, nil)

	sc := render(t, helm, scaled...)
	if sc.deployment == nil || sc.job == nil || sc.ingress == nil || sc.serviceMonitor == nil {
		t.Fatalf("scaled mode renders a Deployment, the migrate Job, an Ingress and a ServiceMonitor: %+v", sc)
	}
	if sc.pvc != nil {
		t.Errorf("scaled mode renders a PVC")
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range sc.deployment.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	for name, secret := range map[string]string{"BERTH_DATABASE": "berth-db", "AWS_ACCESS_KEY_ID": "berth-s3", "AWS_SECRET_ACCESS_KEY": "berth-s3",
		"BERTH_AUTH_KEY_ENCRYPTION_KEY": "berth-kek", "BERTH_BOOTSTRAP_PASSWORD": "berth-bootstrap"} {
		if e, ok := env[name]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secret {
			t.Errorf("scaled mode: %s does not come from the Secret %s: %+v", name, secret, e)
		}
	}
	if *sc.deployment.Spec.Replicas != 3 || env["BERTH_STORAGE"].Value == "" {
		t.Errorf("scaled mode: replicas %d, storage %q", *sc.deployment.Spec.Replicas, env["BERTH_STORAGE"].Value)
	}
	if sc.job.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" || strings.Join(sc.job.Spec.Template.Spec.Containers[0].Args, " ") != "migrate" {
		t.Errorf("scaled mode: the migrate Job: %+v", sc.job.ObjectMeta)
	}
	checkConfig(t, sc.configMap, []string{"BERTH_DATABASE=postgres://berth@db/berth", "BERTH_AUTH_KEY_ENCRYPTION_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
		"max_blob_bytes: 10GiB")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "replicaCount=2"}, "replicaCount > 1 needs mode: scaled"},
		{[]string{"--set", "mode=cluster"}, `mode: "cluster": use single`},
		{[]string{"--set", "mode=scaled"}, "scaled.databaseSecret.name (the postgres:// DSN) is required"},
		{[]string{"--set", "config.listen=:6000"}, "listen and data_dir are set by the chart"},
	} {
		out, err := exec.Command(helm, append([]string{"template", "r", chart}, tc.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("helm template %v: %v; want it refused with %q:\n%s", tc.args, err, tc.want, out)
		}
	}
}

// checkConfig runs berth serve --check on the berth.yaml the chart rendered.
func checkConfig(t *testing.T, cm *corev1.ConfigMap, env []string, want ...string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "berth.yaml")
	os.WriteFile(path, []byte(cm.Data["berth.yaml"]), 0o600)
	cmd := exec.Command(berthBin, "serve", "--config", path, "--check")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("berth serve --check of the chart's berth.yaml: %v\n%s\n%s", err, out, cm.Data["berth.yaml"])
	}
	for _, w := range append(want, "listen: :5000", "data_dir: /data") {
		if !strings.Contains(string(out), w) {
			t.Errorf("the chart's berth.yaml in effect lacks %q:\n%s", w, out)
		}
	}
}

func hasVolume(p corev1.PodSpec, name string, ok func(corev1.Volume) bool) bool {
	for _, v := range p.Volumes {
		if v.Name == name {
			return ok(v)
		}
	}
	return false
}

func hasMount(c corev1.Container, name, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == name && m.MountPath == path {
			return true
		}
	}
	return false
}

// TestHelmChartInBerth: the packaged chart is pushed into a berth with helm and pulled back the
// same, byte for byte.
func TestHelmChartInBerth(t *testing.T) {
	helm := need(t, "helm")
	s := registrytest.New(t, registrytest.Options{})
	user, pass := s.Admin(t)
	dir := t.TempDir()
	env := append(os.Environ(), "HELM_REGISTRY_CONFIG="+filepath.Join(dir, "registry.json"), "HELM_CACHE_HOME="+filepath.Join(dir, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(dir, "config"))
	h := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(helm, args...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	abs, _ := filepath.Abs(chart)
	h("package", abs, "-d", dir)
	h("registry", "login", s.Host, "-u", user, "-p", pass, "--insecure")
	out := h("push", filepath.Join(dir, "berth-0.1.0.tgz"), "oci://"+s.Host+"/charts", "--plain-http")
	if !strings.Contains(out, "Digest: sha256:") {
		t.Errorf("helm push: %s", out)
	}
	pulled := filepath.Join(dir, "pulled")
	os.Mkdir(pulled, 0o755)
	h("pull", "oci://"+s.Host+"/charts/berth", "--version", "0.1.0", "--plain-http", "-d", pulled)
	a, _ := os.ReadFile(filepath.Join(dir, "berth-0.1.0.tgz"))
	b, err := os.ReadFile(filepath.Join(pulled, "berth-0.1.0.tgz"))
	if err != nil || !bytes.Equal(a, b) {
		t.Errorf("the chart pulled from berth differs from the one pushed (%d and %d bytes): %v", len(a), len(b), err)
	}
}
