// packetdrill's names for ICMP types and codes, as the scripts write them
// (`< icmp unreachable port_unreachable [0:0(0)]`, `< icmp parameter_problem code_1 ...`).

const ICMP_TYPES: Record<string, { type: number; codes: Record<string, number> }> = {
  unreachable: {
    type: 3,
    codes: {
      net_unreachable: 0,
      host_unreachable: 1,
      protocol_unreachable: 2,
      port_unreachable: 3,
      frag_needed: 4,
      source_route_failed: 5,
      net_unknown: 6,
      host_unknown: 7,
      source_host_isolated: 8,
      net_prohibited: 9,
      host_prohibited: 10,
      net_unreachable_for_tos: 11,
      host_unreachable_for_tos: 12,
      packet_filtered: 13,
      precedence_violation: 14,
      precedence_cutoff: 15,
    },
  },
  source_quench: { type: 4, codes: {} },
  redirect: { type: 5, codes: { redirect_net: 0, redirect_host: 1, redirect_tos_net: 2, redirect_tos_host: 3 } },
  time_exceeded: { type: 11, codes: { ttl_exceeded_in_transit: 0, frag_reass_exceeded: 1 } },
  parameter_problem: { type: 12, codes: {} },
};

/** The numeric type and code, or a message naming what is unknown. */
export function icmpTypeCode(type: string, code: string | undefined): { type: number; code: number } | string {
  const t = ICMP_TYPES[type];
  if (!t) return `unknown ICMP type '${type}'`;
  if (code === undefined) return { type: t.type, code: 0 };
  const named = t.codes[code];
  if (named !== undefined) return { type: t.type, code: named };
  const generic = /^code_(\d+)$/.exec(code);
  if (generic) return { type: t.type, code: Number(generic[1]) };
  return `unknown ICMP code '${code}'`;
}
