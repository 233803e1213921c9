#!/usr/bin/env bash
# Sets the image name and tag the kustomization deploys (its `images:` entry for bertserve),
# what `kustomize edit set image` would do, with only sed and kubectl; then renders the
# kustomization to check the Deployment really runs that image.
# usage: tools/k8s-set-image.sh NAME TAG [KUSTOMIZATION_DIR (default k8s)]
#   e.g. tools/k8s-set-image.sh harbor.example.com/ml/bertserve "$GIT_COMMIT"
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 NAME TAG [KUSTOMIZATION_DIR]" >&2; exit 2; }
name=$1 tag=$2 dir=${3:-$(dirname "$0")/../k8s}
file=$dir/kustomization.yaml
[[ $name =~ ^[a-z0-9./:_-]+$ ]] || { echo "$0: bad image name $name" >&2; exit 2; }
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || { echo "$0: bad image tag $tag" >&2; exit 2; }
sed -i -e "/^images:/,\$ s|^\(    newName:\).*|\1 $name|" -e "/^images:/,\$ s|^\(    newTag:\).*|\1 \"$tag\"|" "$file"
got=$(kubectl kustomize "$dir" | awk '$1 == "image:" {print $2}' | sort -u)
[ "$got" = "$name:$tag" ] || { echo "$0: the rendered Deployment runs \"$got\", not $name:$tag" >&2; exit 1; }
echo "k8s image: $got"
