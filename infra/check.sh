#!/bin/sh
# Checks infra/ without Docker: docker-compose.yml parses as YAML, create-topics.sh parses as
# sh, and every OW_*/RUST_LOG variable a stage service sets is one its binary reads (listed in
# its `--help`). Run from anywhere: `sh infra/check.sh` (builds the three binaries, debug).
set -eu

cd "$(dirname "$0")/.."

python3 - <<'EOF'
import yaml
with open("infra/docker-compose.yml") as f:
    compose = yaml.safe_load(f)
services = compose["services"]
for name in ("kafka", "schema-registry", "topics", "ow-producer", "ow-processor", "ow-web"):
    assert name in services, f"service {name} is missing"
print("docker-compose.yml: YAML ok,", len(services), "services")
with open("target/compose-env.txt", "w") as out:
    for name in ("ow-producer", "ow-processor", "ow-web"):
        for var in services[name]["environment"]:
            out.write(f"{name} {var}\n")
EOF

sh -n infra/create-topics.sh
echo "create-topics.sh: sh syntax ok"

cargo build --quiet -p ow-producer -p ow-processor -p ow-web --bins
status=0
while read -r service var; do
    if ./target/debug/"$service" --help | grep -q "env: $var="; then
        echo "$service: $var ok"
    else
        echo "$service: $var is not read by the binary" >&2
        status=1
    fi
done < target/compose-env.txt
exit "$status"
