"""The addresses the firewall opens its ports to, from the inventory."""

from __future__ import annotations

from ansible_collections.aicost.monitoring.plugins.filter.host_addresses import host_addresses

HOSTVARS = {
    "mon1": {"aicost_host_address": "10.20.0.10", "ansible_host": "192.0.2.10"},
    "app1": {"ansible_host": "10.20.1.11"},
    "app2.example.internal": {},
}


def test_the_address_set_for_aicost_comes_before_ansible_host_and_the_name() -> None:
    hosts = ["mon1", "app1", "app2.example.internal"]
    assert host_addresses(hosts, HOSTVARS) == ["10.20.0.10", "10.20.1.11", "app2.example.internal"]


def test_a_host_in_several_groups_is_one_address_in_inventory_order() -> None:
    hosts = ["app1", "mon1", "app1", "mon1"]
    assert host_addresses(hosts, HOSTVARS) == ["10.20.1.11", "10.20.0.10"]


def test_no_hosts_no_addresses() -> None:
    assert host_addresses([], HOSTVARS) == []
