/**
 * The simulator's tenant: a handful of realistic devices, some of them app-restricted, one with an
 * unrestrict already pending (the device is offline, so it stays pending).
 */
export interface SimMachine {
  id: string;
  computerDnsName: string;
  osPlatform: string;
  version: string;
  osBuild: number;
  healthStatus: string;
  rbacGroupId: number;
  rbacGroupName: string;
  riskScore: string;
  exposureLevel: string;
  machineTags: string[];
  lastIpAddress: string;
  /** Hours before "now" of the last full device report. */
  lastSeenHoursAgo: number;
  /** Whether the simulator starts with app execution restricted. */
  restricted: boolean;
  /** Whether an unrestrict action is already pending at start. */
  unrestrictPending?: boolean;
}

export const SIM_MACHINES: readonly SimMachine[] = [
  {
    id: '1e5bc9d7e413ddd7902c2932e418702b84d0cc07',
    computerDnsName: 'finance-ws-017.contoso.com',
    osPlatform: 'Windows11',
    version: '23H2',
    osBuild: 22631,
    healthStatus: 'Active',
    rbacGroupId: 140,
    rbacGroupName: 'Finance Workstations',
    riskScore: 'High',
    exposureLevel: 'Medium',
    machineTags: ['Finance', 'VIP'],
    lastIpAddress: '10.20.4.17',
    lastSeenHoursAgo: 3,
    restricted: true,
  },
  {
    id: '9a3f6c1d2e4b5a69788766554433221100ffeedd',
    computerDnsName: 'finance-ws-018.contoso.com',
    osPlatform: 'Windows11',
    version: '23H2',
    osBuild: 22631,
    healthStatus: 'Active',
    rbacGroupId: 140,
    rbacGroupName: 'Finance Workstations',
    riskScore: 'Low',
    exposureLevel: 'Low',
    machineTags: ['Finance'],
    lastIpAddress: '10.20.4.18',
    lastSeenHoursAgo: 5,
    restricted: false,
  },
  {
    id: '01a02b2beb2439cac6bc65ffa3798a3623437f3c',
    computerDnsName: 'eng-build-042.contoso.com',
    osPlatform: 'Windows10',
    version: '22H2',
    osBuild: 19045,
    healthStatus: 'Active',
    rbacGroupId: 141,
    rbacGroupName: 'Engineering',
    riskScore: 'Medium',
    exposureLevel: 'High',
    machineTags: ['BuildAgent'],
    lastIpAddress: '10.30.1.42',
    lastSeenHoursAgo: 1,
    restricted: true,
  },
  {
    id: '28001a0133878e92a6665e9ba00218e9aa7d25bc',
    computerDnsName: 'hr-laptop-113.contoso.com',
    osPlatform: 'Windows11',
    version: '24H2',
    osBuild: 26100,
    healthStatus: 'Inactive',
    rbacGroupId: 142,
    rbacGroupName: 'HR',
    riskScore: 'Low',
    exposureLevel: 'Low',
    machineTags: ['Laptop'],
    lastIpAddress: '192.168.1.113',
    lastSeenHoursAgo: 52,
    restricted: true,
    unrestrictPending: true,
  },
  {
    id: '63b87ad1411d2aa6afc5dcd92f0f66ccdb94157e',
    computerDnsName: 'srv-sql-01.contoso.com',
    osPlatform: 'WindowsServer2022',
    version: '21H2',
    osBuild: 20348,
    healthStatus: 'Active',
    rbacGroupId: 150,
    rbacGroupName: 'Tier 0 Servers',
    riskScore: 'None',
    exposureLevel: 'Medium',
    machineTags: ['Production', 'SQL'],
    lastIpAddress: '10.0.0.21',
    lastSeenHoursAgo: 2,
    restricted: false,
  },
  {
    id: '28c4c8f2392aa90f1eec907f09a59d5ada130239',
    computerDnsName: 'kiosk-lobby-02.contoso.com',
    osPlatform: 'Windows10',
    version: '21H2',
    osBuild: 19044,
    healthStatus: 'Active',
    rbacGroupId: 143,
    rbacGroupName: 'Kiosks',
    riskScore: 'Informational',
    exposureLevel: 'Low',
    machineTags: ['Kiosk', 'Lobby'],
    lastIpAddress: '10.50.0.2',
    lastSeenHoursAgo: 6,
    restricted: true,
  },
  {
    id: 'c4621166a729a3ab6e1d950af5658852165d6334',
    computerDnsName: 'dev-mac-007.contoso.com',
    osPlatform: 'macOS',
    version: '14.5',
    osBuild: 0,
    healthStatus: 'Active',
    rbacGroupId: 141,
    rbacGroupName: 'Engineering',
    riskScore: 'Low',
    exposureLevel: 'Low',
    machineTags: [],
    lastIpAddress: '10.30.2.7',
    lastSeenHoursAgo: 4,
    restricted: false,
  },
];
