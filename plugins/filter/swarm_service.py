# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Ansible convention: DOCUMENTATION, EXAMPLES and RETURN come before the imports.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
name: swarm_service
short_description: A role's compose fragment as the same service in a Swarm stack
version_added: 0.1.0
description:
  - Turns a compose fragment (as the roles write them for C(stack_mode=compose)) into the
    fragment C(docker stack deploy) takes, so that both modes come from one definition.
  - Keys a stack ignores (C(container_name), C(restart), C(depends_on), C(security_opt),
    C(pid)) are dropped; C(restart) becomes a restart policy.
  - Entries of C(tmpfs) become tmpfs mounts (a stack has no C(tmpfs) key); their options
    are dropped.
  - Ports published on loopback are dropped (a swarm cannot bind one address; the services
    reach each other on the overlay network); the others are published in I(publish_mode).
  - Bind mounts of the files in I(files) (or of a directory holding them) become Swarm
    configs or secrets named by their content digest, so that a changed file is a new name
    and the service rolls over to it. Other bind mounts stay (a pinned service's node has
    them).
options:
  _input:
    description: The fragment, with C(services) holding the one service named I(service).
    type: dict
    required: true
  service:
    description: The service's name in the fragment.
    type: str
    required: true
  stack:
    description: The stack's name, which prefixes the names of configs and secrets.
    type: str
    required: true
  mode:
    description: C(replicated), or C(global) for one task on every node.
    type: str
    default: replicated
  replicas:
    description: Tasks of a replicated service.
    type: int
    default: 1
  constraints:
    description: Placement constraints, e.g. C(node.labels.aicost.inventory-host == db1).
    type: list
    elements: str
    default: []
  max_replicas_per_node:
    description:
      - At most this many tasks of the service on one node (0 for no limit). 1 keeps two tasks
        from sharing a node's volumes, also during a start-first update.
    type: int
    default: 0
  publish:
    description:
      - Publish the fragment's ports that are not on loopback (in I(publish_mode)); when off,
        the service is reached on the overlay network only.
    type: bool
    default: true
  update_order:
    description: C(start-first) (the new task is healthy before the old one stops) or C(stop-first).
    type: str
    default: stop-first
  publish_mode:
    description:
      - C(ingress), the routing mesh (the port answers on every node), or C(host) (the port
        answers only on the nodes that run a task).
    type: str
    default: host
  endpoint_mode:
    description: C(vip) (the routing mesh's virtual IP) or C(dnsrr) (DNS round robin).
    type: str
    default: vip
  files:
    description:
      - Host paths to hand over as Swarm objects, each to C({kind, digest}), C(kind) being
        C(config) or C(secret) and C(digest) the file's checksum.
    type: dict
    default: {}
author:
  - aicost.monitoring maintainers (@aicost)
"""

EXAMPLES = r"""
- name: The cost monitor as a stack service
  ansible.builtin.set_fact:
    stack_fragment: >-
      {{ __cost_monitor_compose | aicost.monitoring.swarm_service('cost-monitor', stack='aicost',
         replicas=2, max_replicas_per_node=1, update_order='start-first',
         files=cost_monitor_files) }}

- name: node-exporter on every node, reached on the overlay network only
  ansible.builtin.set_fact:
    stack_fragment: >-
      {{ __node_exporter_compose | aicost.monitoring.swarm_service('node-exporter', stack='aicost',
         mode='global', publish=false) }}
"""

RETURN = r"""
_value:
  description: The fragment for the stack, with its C(configs) and C(secrets) declared.
  type: dict
"""

import posixpath
import re

from ansible.errors import AnsibleFilterError

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
_IGNORED_BY_STACKS = ("container_name", "restart", "depends_on", "security_opt", "pid")
_UPDATE = {"parallelism": 1, "delay": "5s", "failure_action": "rollback", "monitor": "30s"}


def swarm_service(fragment, service, stack, mode="replicated", replicas=1, constraints=(),
                  max_replicas_per_node=0, update_order="stop-first", endpoint_mode="vip",
                  files=None, publish=True, publish_mode="host"):  # fmt: skip
    services = fragment.get("services") or {}
    if service not in services:
        raise AnsibleFilterError(f"swarm_service: the fragment has no service {service!r}")
    if mode not in ("replicated", "global"):
        raise AnsibleFilterError(f"swarm_service: mode is replicated or global, not {mode!r}")
    if update_order not in ("start-first", "stop-first"):
        raise AnsibleFilterError(f"swarm_service: update_order {update_order!r}")
    if publish_mode not in ("ingress", "host"):
        raise AnsibleFilterError(f"swarm_service: publish_mode {publish_mode!r}")
    files = files or {}
    source = dict(services[service])
    objects = {"configs": {}, "secrets": {}}
    spec = {k: v for k, v in source.items() if k not in _IGNORED_BY_STACKS}
    spec["volumes"], mounted = _volumes(source.get("volumes") or [], files, stack, service)
    spec["volumes"] += [{"type": "tmpfs", "target": str(path).split(":", maxsplit=1)[0]}
                        for path in spec.pop("tmpfs", None) or []]  # fmt: skip
    for kind, mounts in mounted.items():
        if mounts:
            spec[kind] = [{"source": name, "target": target} for name, target, path in mounts]
            objects[kind].update(
                {name: {"name": name, "file": path} for name, target, path in mounts}
            )
    if not spec["volumes"]:
        del spec["volumes"]
    ports = _ports(source.get("ports") or [], publish_mode) if publish else []
    if ports:
        spec["ports"] = ports
    else:
        spec.pop("ports", None)
    spec["deploy"] = _deploy(source.get("deploy") or {}, mode, replicas, list(constraints),
                             int(max_replicas_per_node), update_order, endpoint_mode)  # fmt: skip
    result = {key: value for key, value in fragment.items() if key != "services"}
    result["services"] = {service: spec}
    for kind, declared in objects.items():
        if declared:
            result[kind] = {**(fragment.get(kind) or {}), **declared}
    return result


def _volumes(volumes, files, stack, service):
    kept, mounted = [], {"configs": [], "secrets": []}
    for volume in volumes:
        if not isinstance(volume, str) or not volume.startswith("/"):
            kept.append(volume)
            continue
        host, target = volume.split(":")[:2]
        handed = {path: spec for path, spec in files.items()
                  if path == host or path.startswith(host.rstrip("/") + "/")}  # fmt: skip
        if not handed:
            kept.append(volume)
            continue
        for path, spec in sorted(handed.items()):
            kind = spec.get("kind")
            if kind not in ("config", "secret") or not spec.get("digest"):
                raise AnsibleFilterError(
                    f"swarm_service: files[{path!r}] needs kind config or secret, and a digest"
                )
            inside = (
                target if path == host else posixpath.join(target, path[len(host) :].lstrip("/"))
            )
            name = _object_name(stack, service, posixpath.basename(path), spec["digest"])
            mounted[kind + "s"].append((name, inside, path))
    return kept, mounted


def _object_name(stack, service, filename, digest):
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{stack}_{service}_{filename}")
    return f"{base[:52]}_{str(digest)[:10]}"


def _ports(ports, publish_mode):
    published = []
    for port in ports:
        if isinstance(port, dict):  # the long syntax; a stack has no host_ip
            if port.get("host_ip") in _LOOPBACK:
                continue
            long = {key: value for key, value in port.items() if key != "host_ip"}
            long["published"] = int(long["published"])
            published.append({**long, "mode": publish_mode})
            continue
        text, protocol = [*str(port).split("/", 1), "tcp"][:2]
        address, host_port, container_port = _split_port(text)
        if address in _LOOPBACK:
            continue
        published.append({"target": int(container_port), "published": int(host_port),
                          "protocol": protocol, "mode": publish_mode})  # fmt: skip
    return published


def _split_port(text):
    if text.startswith("["):  # [::1]:9090:9090
        address, rest = text[1:].split("]:", 1)
        host_port, container_port = rest.split(":", 1)
        return f"[{address}]", host_port, container_port
    parts = text.rsplit(":", 2)
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return "", parts[0], parts[0]


def _deploy(deploy, mode, replicas, constraints, max_per_node, update_order, endpoint_mode):
    result = {**deploy, "mode": mode, "endpoint_mode": endpoint_mode}
    placement = {}
    if constraints:
        placement["constraints"] = constraints
    if mode == "replicated":
        result["replicas"] = int(replicas)
        if int(replicas) > 1:
            placement["preferences"] = [{"spread": "node.id"}]
        if max_per_node:
            placement["max_replicas_per_node"] = max_per_node
    if placement:
        result["placement"] = placement
    result["update_config"] = {**_UPDATE, "order": update_order}
    result["rollback_config"] = {"parallelism": 1, "order": update_order}
    result["restart_policy"] = {"condition": "any", "delay": "5s"}
    return result


class FilterModule:
    def filters(self):
        return {"swarm_service": swarm_service}
