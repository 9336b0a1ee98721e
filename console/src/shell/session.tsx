import { createContext, useContext } from 'react';
import type { Me, Role } from '../api/types';

export interface Session {
  me: Me | null;
  role: Role | null;
  signIn: (key: string) => Promise<void>;
  signOut: () => void;
  refreshMe: () => Promise<void>;
}

export const SessionContext = createContext<Session>({
  me: null,
  role: null,
  signIn: async () => undefined,
  signOut: () => undefined,
  refreshMe: async () => undefined,
});

export function useSession(): Session {
  return useContext(SessionContext);
}
