#!/usr/bin/env bash
# Runs the examples on a real Kubernetes cluster in Docker (kind): builds the images, loads them into the cluster,
# installs Capstan with `kubectl apply -k deploy/kubernetes`, then runs examples/trainjob-distributed.yaml twice:
#   1. `capstan render` piped to `kubectl apply` (the GitOps path: plain Jobs and Services, no operator involved);
#   2. `kubectl apply -f` of the TrainJob itself, which the operator turns into the same objects.
# Each waits for the Job to complete and prints its logs. CI cannot run this (no Docker there); a developer can:
#   tests/e2e/kind.sh            (needs docker, kind and kubectl on PATH, and the .NET SDK for ./capstan)
# KEEP_CLUSTER=1 keeps the cluster afterwards; CAPSTAN_KIND_CLUSTER names it (default capstan-e2e).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

cluster="${CAPSTAN_KIND_CLUSTER:-capstan-e2e}"
context="kind-$cluster"
tag=0.1.0
images=("ghcr.io/capstan-dev/capstan:$tag" "ghcr.io/capstan-dev/capstan-serving:$tag")
kube() { kubectl --context "$context" "$@"; }
step() { printf '\n==== %s ====\n' "$*"; }

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "tests/e2e/kind.sh needs $tool on PATH" >&2; exit 2; }
done

cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    step "failed: state of the cluster"
    kube get trainjobs,jobs,pods,services -A -l app.kubernetes.io/managed-by=capstan-operator 2>/dev/null || true
    kube -n capstan-system logs deploy/capstan-operator --tail=50 2>/dev/null || true
  fi
  if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT

step "cluster $cluster"
kind get clusters 2>/dev/null | grep -qx "$cluster" || kind create cluster --name "$cluster" --wait 180s

step "images"
docker build -f deploy/docker/capstan.Dockerfile -t "${images[0]}" .
docker build -f deploy/docker/capstan-serving.Dockerfile -t "${images[1]}" .
kind load docker-image --name "$cluster" "${images[@]}"

step "install: kubectl apply -k deploy/kubernetes"
# The CRDs must be established before anything refers to their kinds.
kube apply -k deploy/kubernetes
kube wait --for condition=established --timeout=60s crd -l app.kubernetes.io/part-of=capstan
kube -n capstan-system rollout status deploy/capstan-api --timeout=300s
kube -n capstan-system rollout status deploy/capstan-operator --timeout=300s

wait_job() {
  local ns=$1 job=$2
  kube -n "$ns" wait --for=condition=complete "job/$job" --timeout=300s
  kube -n "$ns" logs "job/$job" --all-containers --prefix --tail=20 || true
}

step "example through capstan render | kubectl apply"
kube create namespace e2e-render --dry-run=client -o yaml | kube apply -f -
./capstan render -f examples/trainjob-distributed.yaml -n e2e-render | kube apply -f -
wait_job e2e-render distributed-hello

step "example through the operator: kubectl apply -f"
kube create namespace e2e-operator --dry-run=client -o yaml | kube apply -f -
kube -n e2e-operator apply -f examples/trainjob-distributed.yaml
for _ in $(seq 60); do
  kube -n e2e-operator get job distributed-hello >/dev/null 2>&1 && break
  sleep 2
done
wait_job e2e-operator distributed-hello
kube -n e2e-operator wait --for=jsonpath='{.status.phase}'=Succeeded trainjob/distributed-hello --timeout=120s
kube -n e2e-operator get trainjobs

step "passed"
