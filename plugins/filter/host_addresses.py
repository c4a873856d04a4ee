# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: host_addresses
short_description: The addresses other hosts reach these inventory hosts at
version_added: 0.1.0
description:
  - For each inventory host, its C(aicost_host_address), else its C(ansible_host), else its
    inventory name; in the order given, each address once.
  - The firewall opens its ports to these addresses (the monitoring hosts, the log agents, the
    swarm's hosts); a name that is not an address is returned as it is, for a preflight to
    refuse.
options:
  _input:
    description: Inventory host names, e.g. C(groups['monitoring']).
    type: list
    elements: str
    required: true
  hostvars:
    description: The play's C(hostvars).
    type: dict
    required: true
author:
  - aicost.monitoring maintainers (@aicost)
"""

EXAMPLES = r"""
- name: The monitoring hosts' addresses
  ansible.builtin.debug:
    msg: "{{ groups['monitoring'] | aicost.monitoring.host_addresses(hostvars) }}"
"""

RETURN = r"""
_value:
  description: One address (or unresolved name) per distinct host.
  type: list
  elements: str
"""


def host_addresses(hosts, hostvars):
    addresses = []
    for host in hosts:
        facts = hostvars.get(host, {})
        address = str(facts.get("aicost_host_address", facts.get("ansible_host", host)))
        if address not in addresses:
            addresses.append(address)
    return addresses


class FilterModule:
    def filters(self):
        return {"host_addresses": host_addresses}
