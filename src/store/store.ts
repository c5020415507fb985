export interface UserRecord {
  id: number
  email: string
  passwordHash: string
  createdAt: Date
}

export interface NewUser {
  email: string
  passwordHash: string
  createdAt: Date
}

/**
 * Everything the service keeps, behind one small interface with a MySQL and a SQLite
 * implementation. Emails arrive already normalised; the unique index decides duplicates.
 */
export interface Store {
  readonly dialect: 'mysql' | 'sqlite'
  /** @throws EmailTaken when the email already has an account. */
  createUser (user: NewUser): Promise<UserRecord>
  findUserByEmail (email: string): Promise<UserRecord | undefined>
  findUserById (id: number): Promise<UserRecord | undefined>
  updatePasswordHash (id: number, passwordHash: string): Promise<void>
  /** Resolves when the database answers a trivial query. */
  ping (): Promise<void>
}
