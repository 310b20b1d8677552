#!/usr/bin/env python3
"""Static checks of the deployment files that no schema validator makes (run by deploy/check).

  validate.py terraform DIR          every var./local./data./resource reference is declared, every
                                     variable is used and documented, every output documented,
                                     every resource's provider is pinned in versions.tf
  validate.py compose CONFIG.json    (the output of `docker compose config --format json`):
                                     loopback-only ports, build targets exist in ./Dockerfile,
                                     health checks behind `service_healthy`, and each process gets
                                     the variables its Rust config requires
  validate.py selftest               the checks above reject broken inputs (so they can fail)

The required variables are read from the Rust sources (`env("X")...context(...)` in the config
modules), not listed here, so a newly required variable fails these checks until the deployment
sets it. Exit status 1 on any finding, each printed on its own line.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# Terraform
# ---------------------------------------------------------------------------------------------

# Resource types are recognised by their provider prefix; anything else before a dot (each.,
# count., a for-expression's variable) is not a resource reference.
RESOURCE_REF = re.compile(r"(?<![\w.])((?:aws|random|temporalcloud)_[a-z0-9_]+)\.([a-zA-Z_][\w-]*)")
DATA_REF = re.compile(r"(?<![\w.])data\.([a-z0-9_]+)\.([a-zA-Z_][\w-]*)")
VAR_REF = re.compile(r"(?<![\w.])var\.([a-zA-Z_][\w-]*)")
LOCAL_REF = re.compile(r"(?<![\w.])local\.([a-zA-Z_][\w-]*)")


def unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def expressions(text: str) -> list[str]:
    """The `${...}` parts of one python-hcl2 string (literal text around them is not code)."""
    out, i = [], 0
    while (start := text.find("${", i)) != -1:
        depth, j = 0, start + 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out.append(text[start + 2 : j])
        i = j + 1
    return out


def walk_strings(node, skip_keys=("description",)):
    """Every string in a parsed block, except documentation attributes."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            if k not in skip_keys:
                yield k
                yield from walk_strings(v, skip_keys)
    elif isinstance(node, list):
        for v in node:
            yield from walk_strings(v, skip_keys)


def references(node) -> dict[str, set]:
    refs = {"var": set(), "local": set(), "data": set(), "resource": set()}
    for s in walk_strings(node):
        for expr in expressions(s):
            refs["var"].update(VAR_REF.findall(expr))
            refs["local"].update(LOCAL_REF.findall(expr))
            refs["data"].update(DATA_REF.findall(expr))
            refs["resource"].update(RESOURCE_REF.findall(expr))
    return refs


def check_terraform(directory: Path) -> list[str]:
    files = sorted(directory.glob("*.tf"))
    if not files:
        return [f"{directory}: no .tf files"]
    problems: list[str] = []
    variables: dict[str, dict] = {}
    locals_: set[str] = set()
    data: set[tuple[str, str]] = set()
    resources: set[tuple[str, str]] = set()
    outputs: dict[str, dict] = {}
    providers: set[str] = set()
    bodies: list[tuple[str, object]] = []
    for f in files:
        try:
            with f.open() as fh:
                doc = hcl2.load(fh)
        except Exception as e:  # the parser's own error says where
            problems.append(f"{f.name}: does not parse as HCL2: {e}")
            continue
        for block in doc.get("variable", []):
            for name, body in block.items():
                variables[unquote(name)] = body
                bodies.append((f"{f.name}: variable {unquote(name)}", body))
        for block in doc.get("locals", []):
            for name, value in block.items():
                if name != "__is_block__":
                    locals_.add(name)
            bodies.append((f"{f.name}: locals", block))
        for block in doc.get("data", []):
            for typ, named in block.items():
                for name, body in named.items():
                    data.add((unquote(typ), unquote(name)))
                    bodies.append((f"{f.name}: data.{unquote(typ)}.{unquote(name)}", body))
        for block in doc.get("resource", []):
            for typ, named in block.items():
                for name, body in named.items():
                    key = (unquote(typ), unquote(name))
                    if key in resources:
                        problems.append(f"{f.name}: resource {key[0]}.{key[1]} declared twice")
                    resources.add(key)
                    bodies.append((f"{f.name}: {key[0]}.{key[1]}", body))
        for block in doc.get("output", []):
            for name, body in block.items():
                outputs[unquote(name)] = body
                bodies.append((f"{f.name}: output {unquote(name)}", body))
        for block in doc.get("provider", []):
            for name, body in block.items():
                bodies.append((f"{f.name}: provider {unquote(name)}", body))
        for block in doc.get("terraform", []):
            for req in block.get("required_providers", []):
                for name, spec in req.items():
                    if name == "__is_block__":
                        continue
                    providers.add(name)
                    version = unquote(str(spec.get("version", "")))
                    if not re.fullmatch(r"= ?\d+\.\d+\.\d+", version):
                        problems.append(
                            f"{f.name}: provider {name} is not pinned to one version ({version!r})"
                        )

    used_vars: set[str] = set()
    for where, body in bodies:
        refs = references(body)
        used_vars |= refs["var"]
        for v in sorted(refs["var"] - variables.keys()):
            problems.append(f"{where}: var.{v} is not declared")
        for loc in sorted(refs["local"] - locals_):
            problems.append(f"{where}: local.{loc} is not declared")
        for typ, name in sorted(refs["data"] - data):
            problems.append(f"{where}: data.{typ}.{name} is not declared")
        for typ, name in sorted(refs["resource"] - resources):
            problems.append(f"{where}: {typ}.{name} is not declared")

    for name, body in sorted(variables.items()):
        if name not in used_vars:
            problems.append(f"variable {name} is declared but never used")
        if not unquote(str(body.get("description", ""))).strip():
            problems.append(f"variable {name} has no description")
        if "type" not in body:
            problems.append(f"variable {name} has no type")
    for name, body in sorted(outputs.items()):
        if not unquote(str(body.get("description", ""))).strip():
            problems.append(f"output {name} has no description")
        if "value" not in body:
            problems.append(f"output {name} has no value")
    for typ, _ in sorted(resources | data):
        provider = typ.split("_", 1)[0]
        if provider not in providers:
            problems.append(f"{typ}: provider {provider} is not in required_providers")
    return problems


# ---------------------------------------------------------------------------------------------
# Compose (and the environment each process needs)
# ---------------------------------------------------------------------------------------------

# Which config modules each binary reads (the Rust sources are the truth for what is required).
CONFIG_SOURCES = {
    "gt-api": ["api/src/config.rs"],
    "worker-cpu": ["worker-kit/src/lib.rs", "activities/src/worker.rs"],
    "worker-gpu": ["worker-kit/src/lib.rs", "transcribe/src/worker.rs"],
}
# `env("X")` whose absence is an error: `.context(...)` right after it (maybe after a `.map`).
REQUIRED_ENV = re.compile(r'env\("([A-Z0-9_]+)"\)\s*(?:\.map\([^()]*\)\s*)?\.context\(')
# A blob directory handed to `BlobLocation::from_env`: required while blobs are local (the
# default); the deployment files set them either way, so they are checked as required.
BLOB_DIR_ENV = re.compile(r'BlobLocation::from_env\(\s*BlobRole::\w+,\s*env\("([A-Z0-9_]+)"\)')
# The API's two auth modes: these variables are required only in one of them.
LOCAL_AUTH = {"GT_JWT_KEY_FILE"}
EXTERNAL_AUTH = {"GT_JWT_ISSUER", "GT_JWT_AUDIENCE"}


def required_env(binary: str, root: Path = ROOT) -> set[str]:
    found: set[str] = set()
    for rel in CONFIG_SOURCES[binary]:
        text = (root / rel).read_text()
        found |= set(REQUIRED_ENV.findall(text)) | set(BLOB_DIR_ENV.findall(text))
    return found


def missing_env(binary: str, env: set[str], required: set[str]) -> set[str]:
    need = set(required)
    if binary == "gt-api":
        external = bool(env & {"GT_JWKS_URL", "GT_JWKS_FILE"})
        need -= EXTERNAL_AUTH if not external else LOCAL_AUTH
    return need - env


def dockerfile_stages(text: str) -> dict[str, dict]:
    """Stage name -> {"base": parent stage or image, "env": set of ENV names, "cmd": str}."""
    stages: dict[str, dict] = {}
    current = None
    # Join continuation lines first.
    lines = re.sub(r"\\\n", " ", text).splitlines()
    for line in lines:
        s = line.strip()
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", s, re.I)
        if m:
            current = m.group(2) or f"<unnamed {len(stages)}>"
            stages[current] = {"base": m.group(1), "env": set(), "cmd": ""}
            continue
        if current is None:
            continue
        m = re.match(r"ENV\s+(.*)", s, re.I)
        if m:
            stages[current]["env"] |= set(re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", m.group(1)))
        m = re.match(r"CMD\s+(.*)", s, re.I)
        if m:
            stages[current]["cmd"] = m.group(1)
    return stages


def stage_env(stages: dict[str, dict], name: str) -> set[str]:
    env: set[str] = set()
    seen = set()
    while name in stages and name not in seen:
        seen.add(name)
        env |= stages[name]["env"]
        name = stages[name]["base"]
    return env


def stage_cmd(stages: dict[str, dict], name: str) -> str:
    while name in stages:
        if stages[name]["cmd"]:
            return stages[name]["cmd"]
        name = stages[name]["base"]
    return ""


def binary_of(command: str) -> str | None:
    for b in CONFIG_SOURCES:
        if re.search(rf'(^|[\s"\[/]){re.escape(b)}($|[\s"\]])', command):
            return b
    return None


def check_compose(config: dict, dockerfile: str, root: Path = ROOT) -> list[str]:
    problems: list[str] = []
    stages = dockerfile_stages(dockerfile)
    services = config.get("services", {})
    required = {b: required_env(b, root) for b in CONFIG_SOURCES}
    for name, svc in sorted(services.items()):
        for port in svc.get("ports", []):
            if port.get("published") and port.get("host_ip") != "127.0.0.1":
                problems.append(
                    f"service {name}: port {port.get('published')} is published on "
                    f"{port.get('host_ip') or 'every interface'}, not 127.0.0.1"
                )
        for dep, cond in (svc.get("depends_on") or {}).items():
            if dep not in services:
                problems.append(f"service {name}: depends on unknown service {dep}")
                continue
            if cond.get("condition") == "service_healthy" and not services[dep].get("healthcheck"):
                problems.append(f"service {name}: waits for {dep} to be healthy, which has no healthcheck")
        build = svc.get("build")
        target = build.get("target") if build else None
        if build and target not in stages:
            problems.append(f"service {name}: build target {target!r} is not a stage of the Dockerfile")
            continue
        command = " ".join(svc.get("command") or []) or (stage_cmd(stages, target) if target else "")
        binary = binary_of(command)
        if binary:
            env = set((svc.get("environment") or {}).keys())
            if target:
                env |= stage_env(stages, target)
            for var in sorted(missing_env(binary, env, required[binary])):
                problems.append(f"service {name}: {binary} requires {var}, which is not set")
    for binary, req in required.items():
        if not req:
            problems.append(f"no required variables found for {binary}: did its config module move?")
    return problems


def terraform_container_env(directory: Path) -> dict[str, set[str]]:
    """Variable names each ECS container gets (plain environment plus secrets), per service."""
    doc: dict = {}
    for f in sorted(directory.glob("*.tf")):
        with f.open() as fh:
            for k, v in hcl2.load(fh).items():
                doc.setdefault(k, []).extend(v)
    locals_ = {}
    for block in doc.get("locals", []):
        locals_.update({k: v for k, v in block.items() if k != "__is_block__"})

    def keys(expr) -> set[str]:
        """Keys of a locals map, following merge(local.x, {...}) and for-expressions."""
        if isinstance(expr, dict):
            return {unquote(k) for k in expr if k != "__is_block__"}
        text = str(expr)
        out = set()
        for ref in re.findall(r"local\.([a-z_]+)", text):
            if ref in locals_ and ref != "integration_keys":
                out |= keys(locals_[ref])
        if "integration_keys" in text:
            out |= {unquote(k) for k in locals_["integration_keys"]}
        out |= set(re.findall(r"\b([A-Z][A-Z0-9_]+)\s*=", text))
        return out

    result = {}
    for svc in ("api", "worker-cpu", "worker-gpu"):
        result[svc] = keys(locals_["container_env"][svc]) | keys(locals_["container_secrets"][svc])
    return result


def check_terraform_env(directory: Path, dockerfile: str, root: Path = ROOT) -> list[str]:
    problems = []
    stages = dockerfile_stages(dockerfile)
    binaries = {"api": "gt-api", "worker-cpu": "worker-cpu", "worker-gpu": "worker-gpu"}
    for svc, env in terraform_container_env(directory).items():
        binary = binaries[svc]
        full = env | stage_env(stages, svc)
        for var in sorted(missing_env(binary, full, required_env(binary, root))):
            problems.append(f"terraform ECS container {svc}: {binary} requires {var}, which is not set")
    return problems


# ---------------------------------------------------------------------------------------------
# Self-test: each check must reject a broken input
# ---------------------------------------------------------------------------------------------


def selftest() -> list[str]:
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "main.tf").write_text(
            'terraform {\n  required_providers {\n    aws = {\n      source  = "hashicorp/aws"\n'
            '      version = "~> 5.0"\n    }\n  }\n}\n'
            'variable "used" {\n  type = string\n}\n'
            'variable "unused" {\n  description = "x"\n  type        = string\n}\n'
            'resource "aws_s3_bucket" "a" {\n  bucket = "${var.used}-${var.missing}"\n'
            '  tags   = { x = local.nope, y = data.aws_thing.gone.id }\n}\n'
            'resource "random_id" "r" {\n  byte_length = 8\n}\n'
            'output "o" {\n  value = aws_s3_bucket.b.id\n}\n'
        )
        found = "\n".join(check_terraform(d))
        for expected in [
            "var.missing is not declared",
            "local.nope is not declared",
            "data.aws_thing.gone is not declared",
            "aws_s3_bucket.b is not declared",
            "variable unused is declared but never used",
            "variable used has no description",
            "output o has no description",
            "provider aws is not pinned",
            "random_id: provider random is not in required_providers",
        ]:
            if expected not in found:
                failures.append(f"selftest terraform: expected a finding {expected!r}, got:\n{found}")
    dockerfile = (
        "FROM debian AS base\nENV GT_RECORDINGS_DIR=/r \\\n    GT_ARTIFACTS_DIR=/a\n"
        'FROM base AS worker-cpu\nCMD ["worker-cpu"]\n'
    )
    config = {
        "services": {
            "db": {"ports": [{"published": "5432", "host_ip": ""}]},
            "w": {
                "build": {"target": "worker-cpu"},
                "depends_on": {"db": {"condition": "service_healthy"}},
                "environment": {"DATABASE_URL": "x"},
            },
            "x": {"build": {"target": "nope"}},
        }
    }
    found = "\n".join(check_compose(config, dockerfile))
    for expected in [
        "service db: port 5432 is published on every interface",
        "service w: waits for db to be healthy, which has no healthcheck",
        "service w: worker-cpu requires GT_VAD_MODEL, which is not set",
        "service x: build target 'nope' is not a stage",
    ]:
        if expected not in found:
            failures.append(f"selftest compose: expected a finding {expected!r}, got:\n{found}")
    if "requires GT_ARTIFACTS_DIR" in found or "requires DATABASE_URL" in found:
        failures.append(f"selftest compose: variables set in ENV or environment reported missing:\n{found}")
    # The required variables really come from the sources (not an empty set that passes all).
    if not {"DATABASE_URL", "GT_ARTIFACTS_DIR", "GT_RECORDINGS_DIR", "GT_VAD_MODEL"} <= required_env("worker-cpu"):
        failures.append(f"selftest: required_env(worker-cpu) = {required_env('worker-cpu')}")
    if "GT_WHISPER_MODEL" not in required_env("worker-gpu"):
        failures.append(f"selftest: required_env(worker-gpu) = {required_env('worker-gpu')}")
    return failures


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] == "terraform" and len(argv) == 3:
        directory = Path(argv[2])
        problems = check_terraform(directory)
        if not problems:
            problems = check_terraform_env(directory, (ROOT / "Dockerfile").read_text())
    elif len(argv) == 3 and argv[1] == "compose":
        config = json.loads(Path(argv[2]).read_text())
        problems = check_compose(config, (ROOT / "Dockerfile").read_text())
    elif len(argv) == 2 and argv[1] == "selftest":
        problems = selftest()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(f"  - {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
